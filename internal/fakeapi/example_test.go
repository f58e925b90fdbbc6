package fakeapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/batstat/batstat/internal/fakeapi"
	"github.com/batstat/batstat/smsbat"
)

// The demo and `batstat mock-server` serve a Handler themselves; tests usually call
// smsbattest.NewServer(t, opts) instead, which does the same and closes the server when the
// test ends.
func ExampleNewHandler() {
	h := fakeapi.NewHandler(fakeapi.DefaultOptions())
	srv := httptest.NewServer(h) // or http.ListenAndServe(addr, h)
	defer srv.Close()

	client, err := smsbat.NewClient(srv.URL, h.Auth(smsbat.AuthHeader), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	const id = "538454127b096493"
	for poll := 1; poll <= 3; poll++ {
		res, err := client.Status(context.Background(), id)
		if err != nil {
			fmt.Println(err)
			return
		}
		st := res.Status
		if st.Cost == nil {
			fmt.Printf("poll %d: %s\n", poll, st.DeliveryStatus)
			continue
		}
		fmt.Printf("poll %d: %s, billed %s %s, channels %v\n", poll, st.DeliveryStatus, st.BillAmount, st.BillCurrency, st.ExtendedStatuses)
	}
	fmt.Println("requests:", h.CountFor(id))

	_, err = client.Status(context.Background(), "05f0cd9d69aec164")
	fmt.Println("404 is ErrNotFound:", errors.Is(err, smsbat.ErrNotFound), "- expected:", h.Expected("05f0cd9d69aec164").NotFound)
	// Output:
	// poll 1: scheduled
	// poll 2: delivered, billed 0.045000 USD, channels map[sms:not_used viber:delivered]
	// poll 3: delivered, billed 0.045000 USD, channels map[sms:not_used viber:delivered]
	// requests: 3
	// 404 is ErrNotFound: true - expected: true
}

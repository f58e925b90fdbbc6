// Command bareclient is the yardstick of scripts/bench-ratio.sh: the least a Go program
// must do to learn the statuses of a list of messages — GET each one over keep-alive
// connections from a fixed number of goroutines and decode its JSON body — and nothing
// more (no database, no retries, no rate limit). batstat fetch is measured against its
// statuses/s.
//
//	go run ./scripts/bareclient -url http://127.0.0.1:8080 -key KEY -concurrency 32 ids.csv
//
// The input is a CSV file whose first column is the message ID, under a header line. It
// prints one line: "bare: N statuses in S s = R statuses/s".
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batstat/batstat/smsbat"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "API base URL")
	key := flag.String("key", "", "API key (X-Authorization-Key)")
	concurrency := flag.Int("concurrency", 32, "goroutines, each with a request in flight")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: bareclient [flags] ids.csv")
	}
	ids, err := readIDs(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 2**concurrency, 2**concurrency
	client := &http.Client{Transport: t, Timeout: 10 * time.Second}

	var next, ok, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(ids)) {
					return
				}
				if get(client, *base+"/bat/message/"+ids[i], *key) {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("bare: %d statuses in %.3f s = %.0f statuses/s (%d failed)\n", ok.Load(), secs, float64(ok.Load())/secs, failed.Load())
}

// get asks for one status; a 404 is an answer too, as batstat counts it.
func get(client *http.Client, url, key string) bool {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("X-Authorization-Key", key)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return false
	}
	if resp.StatusCode == http.StatusNotFound {
		return true
	}
	var st smsbat.Status
	return resp.StatusCode == http.StatusOK && json.Unmarshal(body, &st) == nil
}

func readIDs(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		id, _, _ := strings.Cut(sc.Text(), ",")
		ids = append(ids, id)
	}
	return ids, sc.Err()
}

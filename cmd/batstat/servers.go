package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/ingest/idlist"
	"github.com/batstat/batstat/internal/fakeapi"
)

func mockServerCommand(e *env, runF runFunc[*mockServerOptions]) *cli.Command {
	if runF == nil {
		runF = runMockServer
	}
	d := fakeapi.DefaultOptions()
	return withUsageErrors(&cli.Command{
		Name:  "mock-server",
		Usage: "serve a fake SMSBAT API, to try a cron set-up without a live account",
		Description: "Accepts X-Authorization-Key: KEY, Basic USER:PASSWORD and Basic @:KEY. Statuses move\n" +
			"along the lifecycle as a message is polled again; everything is deterministic from --seed.\n\n" +
			"Any --settle-* flag puts statuses on the clock instead, as the real API's are: each message\n" +
			"is final a delay after --settle-sent-at, however often it is asked. Of the messages found,\n" +
			"--settle-never never become final, --settle-at-once are final at once, and the rest after a\n" +
			"log-normal delay (median --settle-median, spread --settle-sigma, at most --settle-max);\n" +
			"each answers scheduled for the first tenth of its delay, then processing. For example\n" +
			"--settle-at-once 0.3 --settle-never 0.04 --settle-median 10s --settle-sigma 1 --settle-max 5m.\n\n" +
			"--push-url also pushes every status change of the messages in --push-ids to a webhook\n" +
			"receiver such as batstat webhook serve, at the time it happens (statuses on the clock, as\n" +
			"with --settle-*): scheduled when sent, processing, then the final status; IDs answered 404\n" +
			"are never pushed, messages that never settle push processing only. --push-duplicates and\n" +
			"--push-reorder send some changes twice or after the next change of their message, as real\n" +
			"providers do; a delivery is retried on any answer but 2xx.\n\n" +
			"Exit status: 1 cannot listen; 2 bad usage; 130/143 stopped by SIGINT/SIGTERM.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Usage: "`ADDR` to listen on", Value: "127.0.0.1:8080"},
			&cli.Int64Flag{Name: "seed", Usage: "seed of every answer", Value: d.Seed},
			&cli.StringFlag{Name: "api-key", Usage: "accepted API key", Value: fakeapi.DefaultAPIKey},
			&cli.StringFlag{Name: "username", Usage: "accepted user name", Value: fakeapi.DefaultUsername},
			&cli.StringFlag{Name: "password", Usage: "accepted password", Value: fakeapi.DefaultPassword},
			&cli.DurationFlag{Name: "latency", Usage: "added to every answer"},
			&cli.Float64Flag{Name: "not-found-rate", Usage: "fraction of IDs answered 404", Value: d.NotFoundRate},
			&cli.IntFlag{Name: "max-polls", Usage: "polls a message takes at most to reach its final status", Value: d.MaxPollsToFinal},
			&cli.Float64Flag{Name: "fault-429", Usage: "fraction of requests answered 429"},
			&cli.Float64Flag{Name: "fault-500", Usage: "fraction of requests answered 500"},
			&cli.Float64Flag{Name: "fault-garbage", Usage: "fraction of requests answered 200 with an undecodable body"},
			&cli.Float64Flag{Name: "fault-reset", Usage: "fraction of requests whose connection is reset"},
			&cli.StringFlag{Name: "retry-after", Usage: "Retry-After of injected 429s (seconds or an HTTP date)"},
			&cli.Float64Flag{Name: "rate-limit", Usage: "answer 429 above this many requests per second (0 = none)"},
			&cli.StringFlag{Name: "settle-sent-at", Usage: "`TIME` (RFC 3339) the campaign was sent: settle delays count from it (default: when the server starts)"},
			&cli.Float64Flag{Name: "settle-at-once", Usage: "fraction of messages final at once"},
			&cli.Float64Flag{Name: "settle-never", Usage: "fraction of messages that never become final"},
			&cli.DurationFlag{Name: "settle-median", Usage: "median settle delay of the other messages", Value: 10 * time.Second},
			&cli.Float64Flag{Name: "settle-sigma", Usage: "spread of the log-normal settle delay (sigma of its logarithm)", Value: 1},
			&cli.DurationFlag{Name: "settle-max", Usage: "longest settle delay (0 = no cap)", Value: 5 * time.Minute},
			&cli.StringFlag{Name: "push-url", Usage: "POST every status change to `URL` (webhook format)"},
			&cli.StringFlag{Name: "push-token", Usage: "send `T` as Authorization: Bearer T with each push"},
			&cli.StringSliceFlag{Name: "push-ids", Usage: "CSV `FILE` (or glob) of the message IDs to push, read as fetch reads them; repeatable"},
			&cli.Float64Flag{Name: "push-duplicates", Usage: "fraction of pushes sent twice"},
			&cli.Float64Flag{Name: "push-reorder", Usage: "fraction of pushes sent after the next change of their message"},
		},
		Action: action(e, newMockServerOptions, runF),
	})
}

// mockServerOptions are batstat mock-server's flags.
type mockServerOptions struct {
	listen string
	fake   fakeapi.Options
	// push is set by --push-url; its IDs are read from pushFiles when the server starts.
	push      *fakeapi.PushOptions
	pushFiles []string
}

func newMockServerOptions(c *cli.Context, _ *env) (*mockServerOptions, error) {
	opts := fakeapi.DefaultOptions()
	opts.Seed = c.Int64("seed")
	opts.APIKey, opts.Username, opts.Password = c.String("api-key"), c.String("username"), c.String("password")
	opts.Latency = c.Duration("latency")
	opts.NotFoundRate = c.Float64("not-found-rate")
	opts.MaxPollsToFinal = c.Int("max-polls")
	opts.Fault429, opts.Fault500 = c.Float64("fault-429"), c.Float64("fault-500")
	opts.FaultGarbage, opts.FaultReset = c.Float64("fault-garbage"), c.Float64("fault-reset")
	opts.RetryAfter = c.String("retry-after")
	opts.RateLimit = c.Float64("rate-limit")
	settle, err := settleOptions(c)
	if err != nil {
		return nil, err
	}
	opts.Settle = settle
	o := &mockServerOptions{listen: c.String("listen"), fake: opts}
	if o.push, o.pushFiles, err = pushOptions(c); err != nil {
		return nil, err
	}
	return o, nil
}

// pushOptions returns what the --push-* flags ask for, or nil without --push-url.
func pushOptions(c *cli.Context) (*fakeapi.PushOptions, []string, error) {
	raw := c.String("push-url")
	if raw == "" {
		for _, name := range []string{"push-token", "push-ids", "push-duplicates", "push-reorder"} {
			if c.IsSet(name) {
				return nil, nil, usagef("--%s needs --push-url", name)
			}
		}
		return nil, nil, nil
	}
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, usagef("--push-url %q: want an http:// or https:// URL", raw)
	}
	if len(c.StringSlice("push-ids")) == 0 {
		return nil, nil, usagef("--push-url needs --push-ids FILE: the messages whose changes to push")
	}
	files, err := idlist.Expand(c.StringSlice("push-ids"))
	if err != nil {
		return nil, nil, err
	}
	p := &fakeapi.PushOptions{URL: raw, Token: c.String("push-token"),
		Duplicates: c.Float64("push-duplicates"), Reorder: c.Float64("push-reorder")}
	for name, v := range map[string]float64{"--push-duplicates": p.Duplicates, "--push-reorder": p.Reorder} {
		if !(v >= 0 && v <= 1) {
			return nil, nil, usagef("%s %v: want a fraction from 0 to 1", name, v)
		}
	}
	return p, files, nil
}

// readPushIDs reads the message IDs of files as fetch reads them; rejected rows are left
// out.
func readPushIDs(files []string, stdin io.Reader) ([]string, error) {
	var ids []string
	for _, name := range files {
		r, err := idlist.Open(name, stdin, idlist.Options{})
		if err != nil {
			return nil, err
		}
		for {
			row, _, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				return nil, err
			}
			if row != nil {
				ids = append(ids, row.ID)
			}
		}
		r.Close()
	}
	return ids, nil
}

// runMockServer serves until ctx ends, and then returns its cause: a signal stops the
// server with the exit status of any interrupted command.
func runMockServer(ctx context.Context, o *mockServerOptions, e *env) error {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("mock-server: %w", err)
	}
	h := fakeapi.NewHandler(o.fake)
	if s := h.Options().Settle; s != nil {
		fmt.Fprintf(e.stderr, "statuses settle on the clock from %s\n", s.SentAt.Format(time.RFC3339))
	}
	var pusher *fakeapi.Pusher
	if o.push != nil {
		if pusher, err = newPusher(h, o, e); err != nil {
			ln.Close()
			return err
		}
	}
	// Last: scripts and tests wait for this line before they connect.
	fmt.Fprintf(e.stderr, "mock SMSBAT API listening on http://%s (api key %q, user %q)\n",
		ln.Addr(), o.fake.APIKey, o.fake.Username)
	if pusher != nil {
		pushCtx, stopPush := context.WithCancel(ctx)
		pushDone := make(chan struct{})
		go func() {
			defer close(pushDone)
			if pusher.Run(pushCtx) == nil {
				st := pusher.Stats()
				fmt.Fprintf(e.stderr, "pushed %d status changes to %s: %d delivered, %d given up, %d requests\n",
					len(pusher.Schedule()), o.push.URL, st.Delivered, st.Failed, st.Requests)
			}
		}()
		defer func() { stopPush(); <-pushDone }()
	}
	if err := serve(ctx, ln, h); err != nil {
		return err
	}
	return context.Cause(ctx)
}

// newPusher reads the IDs to push and makes the pusher of their status changes.
func newPusher(h *fakeapi.Handler, o *mockServerOptions, e *env) (*fakeapi.Pusher, error) {
	ids, err := readPushIDs(o.pushFiles, e.stdin)
	if err != nil {
		return nil, fmt.Errorf("mock-server: --push-ids: %w", err)
	}
	po := *o.push
	po.IDs = ids
	po.Logger = slog.New(slog.NewTextHandler(e.stderr, nil))
	p, err := h.NewPusher(po)
	if err != nil {
		return nil, fmt.Errorf("mock-server: %w", err)
	}
	fmt.Fprintf(e.stderr, "pushing %d status changes of %d messages to %s\n", len(p.Schedule()), len(ids), po.URL)
	return p, nil
}

// settleOptions returns the lifecycle on the clock that the --settle-* flags ask for, or
// nil when none is given.
func settleOptions(c *cli.Context) (*fakeapi.Settle, error) {
	on := false
	for _, name := range []string{"settle-sent-at", "settle-at-once", "settle-never", "settle-median", "settle-sigma", "settle-max"} {
		on = on || c.IsSet(name)
	}
	if !on && c.String("push-url") == "" {
		return nil, nil
	}
	if c.IsSet("max-polls") {
		return nil, usagef("--max-polls counts polls, and --settle-* flags and --push-url put statuses on the clock: give one or the other")
	}
	s := &fakeapi.Settle{
		AtOnce: c.Float64("settle-at-once"), Never: c.Float64("settle-never"),
		Median: c.Duration("settle-median"), Sigma: c.Float64("settle-sigma"), Max: c.Duration("settle-max"),
	}
	if v := c.String("settle-sent-at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, usagef("--settle-sent-at %q: want an RFC 3339 time such as 2025-03-01T09:00:00Z", v)
		}
		s.SentAt = t
	}
	return s, nil
}

// serve serves h on ln until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("mock-server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("mock-server: shutdown: %w", err)
	}
	return nil
}

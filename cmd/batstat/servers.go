package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/smsbat/smsbattest"
)

func mockServerCommand(e *env, runF runFunc[*mockServerOptions]) *cli.Command {
	if runF == nil {
		runF = runMockServer
	}
	d := smsbattest.DefaultOptions()
	return withUsageErrors(&cli.Command{
		Name:  "mock-server",
		Usage: "serve a fake SMSBAT API, to try a cron set-up without a live account",
		Description: "Accepts X-Authorization-Key: KEY, Basic USER:PASSWORD and Basic @:KEY. Statuses move\n" +
			"along the lifecycle as a message is polled again; everything is deterministic from --seed.\n" +
			"Exit status: 1 cannot listen; 2 bad usage; 130/143 stopped by SIGINT/SIGTERM.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Usage: "`ADDR` to listen on", Value: "127.0.0.1:8080"},
			&cli.Int64Flag{Name: "seed", Usage: "seed of every answer", Value: d.Seed},
			&cli.StringFlag{Name: "api-key", Usage: "accepted API key", Value: smsbattest.DefaultAPIKey},
			&cli.StringFlag{Name: "username", Usage: "accepted user name", Value: smsbattest.DefaultUsername},
			&cli.StringFlag{Name: "password", Usage: "accepted password", Value: smsbattest.DefaultPassword},
			&cli.DurationFlag{Name: "latency", Usage: "added to every answer"},
			&cli.Float64Flag{Name: "not-found-rate", Usage: "fraction of IDs answered 404", Value: d.NotFoundRate},
			&cli.IntFlag{Name: "max-polls", Usage: "polls a message takes at most to reach its final status", Value: d.MaxPollsToFinal},
			&cli.Float64Flag{Name: "fault-429", Usage: "fraction of requests answered 429"},
			&cli.Float64Flag{Name: "fault-500", Usage: "fraction of requests answered 500"},
			&cli.Float64Flag{Name: "fault-garbage", Usage: "fraction of requests answered 200 with an undecodable body"},
			&cli.Float64Flag{Name: "fault-reset", Usage: "fraction of requests whose connection is reset"},
			&cli.StringFlag{Name: "retry-after", Usage: "Retry-After of injected 429s (seconds or an HTTP date)"},
			&cli.Float64Flag{Name: "rate-limit", Usage: "answer 429 above this many requests per second (0 = none)"},
		},
		Action: action(e, newMockServerOptions, runF),
	})
}

// mockServerOptions are batstat mock-server's flags.
type mockServerOptions struct {
	listen string
	fake   smsbattest.Options
}

func newMockServerOptions(c *cli.Context, _ *env) (*mockServerOptions, error) {
	opts := smsbattest.DefaultOptions()
	opts.Seed = c.Int64("seed")
	opts.APIKey, opts.Username, opts.Password = c.String("api-key"), c.String("username"), c.String("password")
	opts.Latency = c.Duration("latency")
	opts.NotFoundRate = c.Float64("not-found-rate")
	opts.MaxPollsToFinal = c.Int("max-polls")
	opts.Fault429, opts.Fault500 = c.Float64("fault-429"), c.Float64("fault-500")
	opts.FaultGarbage, opts.FaultReset = c.Float64("fault-garbage"), c.Float64("fault-reset")
	opts.RetryAfter = c.String("retry-after")
	opts.RateLimit = c.Float64("rate-limit")
	return &mockServerOptions{listen: c.String("listen"), fake: opts}, nil
}

// runMockServer serves until ctx ends, and then returns its cause: a signal stops the
// server with the exit status of any interrupted command.
func runMockServer(ctx context.Context, o *mockServerOptions, e *env) error {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("mock-server: %w", err)
	}
	fmt.Fprintf(e.stderr, "mock SMSBAT API listening on http://%s (api key %q, user %q)\n",
		ln.Addr(), o.fake.APIKey, o.fake.Username)
	if err := serve(ctx, ln, smsbattest.NewHandler(o.fake)); err != nil {
		return err
	}
	return context.Cause(ctx)
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

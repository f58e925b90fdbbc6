package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/internal/fakeapi"
)

func mockServerCommand(e *env) *cli.Command {
	d := fakeapi.DefaultOptions()
	return withUsageErrors(&cli.Command{
		Name:  "mock-server",
		Usage: "serve a fake SMSBAT API, to try a cron set-up without a live account",
		Description: "Accepts X-Authorization-Key: KEY, Basic USER:PASSWORD and Basic @:KEY. Statuses move\n" +
			"along the lifecycle as a message is polled again; everything is deterministic from --seed.",
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
		},
		Action: func(c *cli.Context) error {
			opts := d
			opts.Seed = c.Int64("seed")
			opts.APIKey, opts.Username, opts.Password = c.String("api-key"), c.String("username"), c.String("password")
			opts.Latency = c.Duration("latency")
			opts.NotFoundRate = c.Float64("not-found-rate")
			opts.MaxPollsToFinal = c.Int("max-polls")
			opts.Fault429, opts.Fault500 = c.Float64("fault-429"), c.Float64("fault-500")
			opts.FaultGarbage, opts.FaultReset = c.Float64("fault-garbage"), c.Float64("fault-reset")
			opts.RetryAfter = c.String("retry-after")
			opts.RateLimit = c.Float64("rate-limit")
			ln, err := net.Listen("tcp", c.String("listen"))
			if err != nil {
				return fmt.Errorf("mock-server: %w", err)
			}
			fmt.Fprintf(e.stderr, "mock SMSBAT API listening on http://%s (api key %q, user %q)\n",
				ln.Addr(), opts.APIKey, opts.Username)
			return serve(c.Context, ln, fakeapi.NewHandler(opts))
		},
	})
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

package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/ingest/idlist"
	"github.com/batstat/batstat/smsbat"
)

func fetchCommand(e *env) *cli.Command {
	flags := []cli.Flag{
		dbFlag(),
		&cli.StringFlag{Name: "api-url", Usage: "API base `URL`", EnvVars: []string{"SMSBAT_API_URL"}, Value: smsbat.DefaultBaseURL},
		&cli.StringFlag{Name: "api-key", Usage: "API `KEY`", EnvVars: []string{"SMSBAT_API_KEY"}},
		&cli.StringFlag{Name: "api-key-file", Usage: "read the API key from `FILE` (first line)"},
		&cli.StringFlag{Name: "username", Usage: "account user name (HTTP Basic)", EnvVars: []string{"SMSBAT_USERNAME"}},
		&cli.StringFlag{Name: "password", Usage: "account password (HTTP Basic)", EnvVars: []string{"SMSBAT_PASSWORD"}},
		&cli.StringFlag{Name: "auth", Usage: "header, basic or key-password (default: header with a key, basic with a username)"},
		&cli.BoolFlag{Name: "allow-insecure-http", Usage: "allow a plain http:// API URL to a non-loopback host (sends credentials in clear)"},
		&cli.IntFlag{Name: "concurrency", Usage: "requests in flight at once", Value: 10},
		&cli.Float64Flag{Name: "rate", Usage: "requests per second, retries included (0 = unlimited)", Value: 10},
		&cli.IntFlag{Name: "burst", Usage: "token bucket size (default: same as --rate)"},
		&cli.DurationFlag{Name: "timeout", Usage: "per request", Value: 10 * time.Second},
		&cli.IntFlag{Name: "retries", Usage: "further attempts per message after the first", Value: 5},
		&cli.StringFlag{Name: "campaign", Usage: "campaign `NAME` of every row (default: a campaign column, else the file name)"},
		&cli.StringFlag{Name: "id-column", Usage: "ID column `NAME` (default: messageId, msg_id, sms_id, message_uuid, uuid or id)"},
		&cli.StringFlag{Name: "campaign-column", Usage: "campaign column `NAME` (default: campaign)"},
		&cli.StringFlag{Name: "delimiter", Usage: `field separator: ",", ";", "\t" or "tab" (default: detected)`},
		&cli.StringFlag{Name: "refresh", Usage: "pending (messages without a terminal status) or all", Value: "pending"},
		&cli.BoolFlag{Name: "strict", Usage: "fail before any request if any input row is rejected"},
		&cli.BoolFlag{Name: "no-progress", Usage: "no progress bar even on a terminal (log lines instead)"},
	}
	flags = append(flags, logFlags()...)
	flags = append(flags, resourceFlags(ingest.MemoryLimit)...)
	return withUsageErrors(&cli.Command{
		Name:      "fetch",
		Usage:     "read message IDs from CSV files and fetch their delivery statuses into the database",
		ArgsUsage: "FILE... (CSV, .csv.gz, a glob, or - for stdin)",
		Description: "Exit status: 0 every message has an answer; 3 some messages still failed after their\n" +
			"retries; 1 fatal error; 2 bad usage; 130/143 interrupted (after flushing what was fetched).",
		Flags:  flags,
		Action: func(c *cli.Context) error { return runFetch(c, e) },
	})
}

func runFetch(c *cli.Context, e *env) error {
	if c.NArg() == 0 {
		return usagef("fetch: no input FILE given (use - for stdin)")
	}
	log, err := newLogger(c, e.stderr)
	if err != nil {
		return err
	}
	auth, err := authFromFlags(c)
	if err != nil {
		return err
	}
	apiURL := c.String("api-url")
	if err := checkAPIURL(apiURL, c.Bool("allow-insecure-http")); err != nil {
		return err
	}
	readOpts, err := readOptions(c)
	if err != nil {
		return err
	}
	inputs, err := idlist.Expand(c.Args().Slice())
	if err != nil {
		return err
	}
	cfg := ingest.Config{
		APIURL:      apiURL,
		Inputs:      inputs,
		Stdin:       e.stdin,
		Read:        readOpts,
		Strict:      c.Bool("strict"),
		Concurrency: c.Int("concurrency"),
		Rate:        c.Float64("rate"),
		Burst:       c.Int("burst"),
		Timeout:     c.Duration("timeout"),
		Retries:     c.Int("retries"),
		Refresh:     ingest.Refresh(c.String("refresh")),
		Logger:      log,
	}
	if err := checkFetchNumbers(&cfg); err != nil {
		return err
	}
	cfg.Client, err = smsbat.NewClient(apiURL, auth, smsbat.NewHTTPClient(cfg.Timeout, cfg.Concurrency))
	if err != nil {
		return usagef("%v", err)
	}
	if e.stderrTTY && !c.Bool("no-progress") {
		cfg.ProgressBar = e.stderr
	}

	db, err := openDB(c, false)
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("fetch starting", "db", db.Path, "api_url", apiURL, "auth", auth.String(),
		"inputs", len(inputs), "concurrency", cfg.Concurrency, "rate", cfg.Rate)
	sum, err := ingest.Fetch(c.Context, db, cfg)
	if sum != nil {
		log.Info("fetch finished", sum.LogAttrs()...)
	}
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close database %s: %w", db.Path, cerr)
	}
	if err != nil {
		return memoryHint(c, err)
	}
	if sum.Failed > 0 {
		return &partialError{failed: sum.Failed}
	}
	return nil
}

// authFromFlags picks the credentials and the auth mode. Secrets never leave this function
// except inside smsbat.Auth, whose String hides them.
func authFromFlags(c *cli.Context) (smsbat.Auth, error) {
	a := smsbat.Auth{
		APIKey:   c.String("api-key"),
		Username: c.String("username"),
		Password: c.String("password"),
	}
	if f := c.String("api-key-file"); f != "" {
		if c.IsSet("api-key") {
			return a, usagef("give --api-key or --api-key-file, not both")
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return a, fmt.Errorf("api key file: %w", err)
		}
		key, _, _ := strings.Cut(string(b), "\n")
		a.APIKey = strings.TrimSpace(key)
		if a.APIKey == "" {
			return a, fmt.Errorf("api key file %s: empty", f)
		}
	}
	switch mode := c.String("auth"); {
	case mode != "":
		a.Mode = smsbat.AuthMode(mode)
	case a.APIKey != "":
		a.Mode = smsbat.AuthHeader
	case a.Username != "":
		a.Mode = smsbat.AuthBasic
	default:
		return a, usagef("no credentials: give --api-key, --api-key-file or --username/--password (or SMSBAT_API_KEY, SMSBAT_USERNAME/SMSBAT_PASSWORD)")
	}
	if err := a.Validate(); err != nil {
		return a, usagef("%v", err)
	}
	return a, nil
}

// checkAPIURL refuses plain http to anything but loopback: the credentials travel with
// every request.
func checkAPIURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return usagef("--api-url %q: want an http:// or https:// URL with a host", raw)
	}
	if u.User != nil {
		return usagef("--api-url: put credentials in --username/--password or --api-key, not in the URL")
	}
	if u.Scheme == "https" || allowInsecure {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usagef("--api-url %s: plain http to a non-loopback host would send credentials in clear; use https or --allow-insecure-http", raw)
}

func readOptions(c *cli.Context) (idlist.Options, error) {
	o := idlist.Options{
		IDColumn:       c.String("id-column"),
		CampaignColumn: c.String("campaign-column"),
		Campaign:       c.String("campaign"),
	}
	d, err := idlist.ParseDelimiter(c.String("delimiter"))
	if err != nil {
		return o, usagef("--%v", err)
	}
	o.Delimiter = d
	return o, nil
}

func checkFetchNumbers(cfg *ingest.Config) error {
	var errs []error
	if cfg.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("--concurrency %d: must be at least 1", cfg.Concurrency))
	}
	if cfg.Rate < 0 {
		errs = append(errs, fmt.Errorf("--rate %g: must be 0 (unlimited) or more", cfg.Rate))
	}
	if cfg.Burst < 0 {
		errs = append(errs, fmt.Errorf("--burst %d: must not be negative", cfg.Burst))
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %v: must be positive", cfg.Timeout))
	}
	if cfg.Retries < 0 {
		errs = append(errs, fmt.Errorf("--retries %d: must not be negative", cfg.Retries))
	}
	if cfg.Refresh != ingest.RefreshPending && cfg.Refresh != ingest.RefreshAll {
		errs = append(errs, fmt.Errorf("--refresh %q: want pending or all", cfg.Refresh))
	}
	if len(errs) > 0 {
		return &usageError{errors.Join(errs...)}
	}
	return nil
}

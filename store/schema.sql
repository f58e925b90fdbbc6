-- batstat schema. Package store applies it in one transaction on every read-write open
-- (and before a read-only open of an older file), then records store.SchemaVersion as
-- batstat_meta.schema_version: raise that number whenever what this file creates changes.
-- Every statement is idempotent, so an old file is brought up to date and a current one is
-- left alone. Money is DECIMAL(18,6): exact, and what the Go side carries as int64
-- micro-units.

CREATE TABLE IF NOT EXISTS batstat_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS runs_run_id_seq START 1;

-- One row per fetch run. A row whose outcome is still 'running' and whose process is gone
-- was killed; batstat marks such rows 'crashed' when it next opens the file.
CREATE TABLE IF NOT EXISTS runs (
    run_id        BIGINT PRIMARY KEY DEFAULT nextval('runs_run_id_seq'),
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    outcome       VARCHAR NOT NULL,      -- running | ok | partial | failed | interrupted | crashed
    api_url       VARCHAR,
    inputs        VARCHAR,               -- the FILE arguments, space separated
    refresh       VARCHAR,
    ids_read      BIGINT NOT NULL DEFAULT 0,  -- rows that yielded an ID
    rejected      BIGINT NOT NULL DEFAULT 0,  -- rows sent to rejected_rows
    requested     BIGINT NOT NULL DEFAULT 0,  -- messages the run set out to ask (per --refresh), asked or not
    answered      BIGINT NOT NULL DEFAULT 0,  -- got a status (not_found included)
    not_found     BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,  -- still without an answer after retries
    retries       BIGINT NOT NULL DEFAULT 0,
    rate_limited  BIGINT NOT NULL DEFAULT 0,  -- 429 answers seen
    error         VARCHAR,                    -- why a failed or interrupted run stopped
    loading       BOOLEAN DEFAULT false       -- true until all of the run's inputs are loaded
);
-- Files made before the column existed: their loads were single transactions, all finished.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS loading BOOLEAN DEFAULT false;

-- One row per message ID, the first time any run reads it. The ID is unique without a
-- PRIMARY KEY: the one writer adds only IDs it has not got (an anti-join per load chunk).
-- A key's index must be wholly in memory to add to it, which on a file of tens of millions
-- of messages takes more than a fetch should; files made with the key lose it on open.
CREATE TABLE IF NOT EXISTS messages (
    message_id          VARCHAR NOT NULL,
    campaign            VARCHAR NOT NULL,
    source_file         VARCHAR,
    source_line         BIGINT,
    first_loaded_at     TIMESTAMPTZ NOT NULL,
    run_id              BIGINT,
    recipient           VARCHAR,
    sent_at             VARCHAR,          -- as the CSV wrote it
    customer_message_id VARCHAR,
    messagelist_id      VARCHAR
);

-- One row per answer received (history). A 404 is an answer: deliverystatus 'not_found'.
-- source says where it came from: 'poll' (batstat asked: run_id, http_status and attempts
-- are set) or 'webhook' (the provider pushed it: checked_at is the event's timestamp,
-- received_at when the receiver got it, raw the event; no run, HTTP status or attempts).
CREATE TABLE IF NOT EXISTS status_checks (
    message_id        VARCHAR NOT NULL,
    run_id            BIGINT,
    checked_at        TIMESTAMPTZ NOT NULL,
    http_status       INTEGER,
    deliverystatus    VARCHAR NOT NULL,
    partscount        INTEGER,
    cost              DECIMAL(18,6),
    messagelist_id    BIGINT,
    rate              DECIMAL(18,6),
    rate_amount       DECIMAL(18,6),
    rate_currency     VARCHAR,
    bill_amount       DECIMAL(18,6),
    bill_currency     VARCHAR,
    fallbacks         JSON,               -- [{"type":..,"status":..}], NULL when absent
    extended_statuses JSON,               -- {"viber":"delivered",..}, NULL when absent
    attempts          INTEGER,
    raw               VARCHAR,            -- the response body (or pushed event) as received
    source            VARCHAR DEFAULT 'poll',  -- poll | webhook
    received_at       TIMESTAMPTZ         -- when a pushed event arrived; NULL for polls
);
-- Files of schema 3 and before: every row was polled. The columns go last, where a file
-- made new has them too, so that INSERT ... SELECT * between the tables lines up.
ALTER TABLE status_checks ADD COLUMN IF NOT EXISTS source VARCHAR DEFAULT 'poll';
ALTER TABLE status_checks ADD COLUMN IF NOT EXISTS received_at TIMESTAMPTZ;
ALTER TABLE status_checks ALTER COLUMN run_id DROP NOT NULL;
ALTER TABLE status_checks ALTER COLUMN http_status DROP NOT NULL;
ALTER TABLE status_checks ALTER COLUMN attempts DROP NOT NULL;

-- Where batstat webhook load stopped in each spool file: the byte offset of the first line
-- not loaded yet and the lines before it. A load resumes there, so a spool loaded twice
-- adds nothing and one that grew adds only its new lines. It is written in the same
-- transaction as the rows it covers.
CREATE TABLE IF NOT EXISTS webhook_positions (
    file      VARCHAR PRIMARY KEY,        -- absolute path of the spool file
    "offset"  BIGINT NOT NULL,
    line      BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);

-- Messages that a run could not get an answer for, after their retries.
CREATE TABLE IF NOT EXISTS fetch_errors (
    run_id       BIGINT NOT NULL,
    message_id   VARCHAR NOT NULL,
    failed_at    TIMESTAMPTZ NOT NULL,
    attempts     INTEGER NOT NULL,
    kind         VARCHAR NOT NULL,        -- rate_limited | server_error | bad_request | network | decode | ...
    http_status  INTEGER,
    error        VARCHAR NOT NULL,
    last_body    VARCHAR
);

-- Input rows that were not loaded. line is the physical line in the file, the header
-- being line 1.
CREATE TABLE IF NOT EXISTS rejected_rows (
    run_id      BIGINT,
    rejected_at TIMESTAMPTZ NOT NULL,
    file        VARCHAR NOT NULL,
    line        BIGINT NOT NULL,
    campaign    VARCHAR,
    message_id  VARCHAR,
    reason      VARCHAR NOT NULL,
    raw         VARCHAR
);

-- The latest answer per message: the columns of status_checks but the raw body (which no
-- report reads, and which would double the bytes every batch writes), one row per message
-- that has any answer. The latest is the first by this rule: a terminal status before any
-- other (a pushed "processing" that arrives after "delivered" never undoes it), then the
-- newest checked_at. The writers (a fetch's batches, a webhook load) replace a message's row
-- in the same transaction that adds its new status_checks rows, when the new answer comes
-- first by the rule, so the two never disagree; reports read this (through
-- message_status) instead of ranking the whole history, which at 10M checks costs seconds
-- per report. Rows of IDs that no campaign has loaded yet (pushed before their list was
-- loaded) wait here; message_status shows them once the list is loaded.
CREATE TABLE IF NOT EXISTS status_latest AS SELECT * EXCLUDE (raw) FROM status_checks LIMIT 0;
ALTER TABLE status_latest ADD COLUMN IF NOT EXISTS source VARCHAR DEFAULT 'poll';
ALTER TABLE status_latest ADD COLUMN IF NOT EXISTS received_at TIMESTAMPTZ;

-- The latest answer per message, joined with its campaign. Messages never answered appear
-- with NULL status columns, so a report can count them as unchecked. A run loads its inputs
-- in committed chunks; the messages of a run still loading (or killed while loading, until
-- the next fetch takes them back) are not shown, so a report never sees half a campaign.
CREATE OR REPLACE VIEW message_status AS
SELECT
    m.message_id,
    m.campaign,
    s.deliverystatus,
    s.checked_at,
    s.http_status,
    s.partscount,
    s.cost,
    s.messagelist_id,
    s.rate,
    s.rate_amount,
    s.rate_currency,
    s.bill_amount,
    s.bill_currency,
    s.fallbacks,
    s.extended_statuses,
    s.run_id,
    m.recipient,
    m.sent_at,
    m.customer_message_id,
    m.source_file,
    m.source_line,
    m.first_loaded_at
FROM messages m
LEFT JOIN status_latest s USING (message_id)
WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.loading AND r.run_id = m.run_id);

-- Macros. They are kept in the file, so that whoever opens it in the DuckDB CLI has them.

-- is_terminal(status): a message in this status can never change again; false for NULL
-- (no answer yet). The list is Go's (smsbat.TerminalStatuses), filled in by store.
CREATE OR REPLACE MACRO is_terminal(status) AS
    coalesce(status IN (/* terminal statuses */), false);

-- The report filter, defined here once for every report in queries/ and for any report
-- of your own. A report binds $campaigns (VARCHAR[]), $since and $until (TIMESTAMPTZ) and
-- selects with in_campaigns(campaign, $campaigns) AND in_period(t, $since, $until).
--
-- message_time(sent_at, first_loaded_at): when a message was sent, as far as batstat
-- knows: the CSV's sent time when it parses as a timestamp (read in DuckDB's TimeZone
-- setting when it has no UTC offset), else when batstat first loaded the ID.
CREATE OR REPLACE MACRO message_time(sent_at, first_loaded_at) AS
    coalesce(try_cast(sent_at AS TIMESTAMPTZ), first_loaded_at);
-- all_campaigns(campaigns): no campaign named (NULL or an empty list) means every one.
CREATE OR REPLACE MACRO all_campaigns(campaigns) AS
    coalesce(len(campaigns::VARCHAR[]), 0) = 0;
-- in_campaigns(campaign, campaigns): campaign is one of campaigns, or none is named.
CREATE OR REPLACE MACRO in_campaigns(campaign, campaigns) AS
    all_campaigns(campaigns) OR list_contains(campaigns::VARCHAR[], campaign);
-- in_period(t, since, until): since <= t < until, a NULL bound being no bound.
CREATE OR REPLACE MACRO in_period(t, since, until) AS
    (since::TIMESTAMPTZ IS NULL OR t >= since::TIMESTAMPTZ)
    AND (until::TIMESTAMPTZ IS NULL OR t < until::TIMESTAMPTZ);

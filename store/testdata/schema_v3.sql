-- batstat schema, version 3 (before pushed statuses): kept to test the upgrade from it.

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
CREATE TABLE IF NOT EXISTS status_checks (
    message_id        VARCHAR NOT NULL,
    run_id            BIGINT NOT NULL,
    checked_at        TIMESTAMPTZ NOT NULL,
    http_status       INTEGER NOT NULL,
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
    attempts          INTEGER NOT NULL,
    raw               VARCHAR             -- the response body as received
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
-- that has any answer. The fetch writer replaces a message's row in the same transaction
-- that adds its new status_checks row, so the two never disagree; reports read this
-- (through message_status) instead of ranking the whole history, which at 10M checks
-- costs seconds per report.
CREATE TABLE IF NOT EXISTS status_latest AS SELECT * EXCLUDE (raw) FROM status_checks LIMIT 0;

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
    coalesce(status IN ('delivered', 'undeliverable', 'permanenterror'), false);

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

INSERT OR REPLACE INTO batstat_meta VALUES ('schema_version', '3');

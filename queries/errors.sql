-- errors: fetch errors by kind and rejected input rows by reason, per campaign
-- total: occurrences
--
-- One row per campaign, source and reason:
--   source       fetch_errors (a message still without an answer after a run's retries;
--                reason = its kind, e.g. rate_limited, server_error, network) or
--                rejected_rows (an input row not loaded; reason = why, except that the
--                rows rejected as "duplicate of FILE:LINE" are counted together as
--                "duplicate": rejected_rows names each one's first occurrence)
--   campaign     the message's campaign (fetch_errors) or the row's campaign
--                (rejected_rows); "" when unknown
--   occurrences  error rows; a message failing in two runs counts twice
--   messages     distinct message IDs among them (rejected rows without an ID count none)
--   first_at, last_at   when the first and the last of them happened
--
-- Parameters (batstat binds them all; in the duckdb CLI, on a batstat file, whose schema
-- holds the filter macros in_campaigns, in_period and message_time:
-- PREPARE r AS <this file>; then EXECUTE r(campaigns := ['x'], since := NULL, until := NULL)):
--   $campaigns VARCHAR[]   the campaigns to report; empty = all
--   $since, $until         TIMESTAMPTZ, NULL = unbounded: since <= failed_at or rejected_at < until
WITH errs AS (
    SELECT
        coalesce(m.campaign, '') AS campaign,
        'fetch_errors' AS source,
        f.kind AS reason,
        f.message_id,
        f.failed_at AS happened_at
    FROM fetch_errors f
    LEFT JOIN messages m USING (message_id)
    UNION ALL
    SELECT
        coalesce(r.campaign, ''),
        'rejected_rows',
        CASE WHEN starts_with(r.reason, 'duplicate of ') THEN 'duplicate' ELSE r.reason END,
        nullif(r.message_id, ''),
        r.rejected_at
    FROM rejected_rows r
)
SELECT
    campaign,
    source,
    reason,
    count(*) AS occurrences,
    count(DISTINCT message_id) AS messages,
    min(happened_at) AS first_at,
    max(happened_at) AS last_at
FROM errs
WHERE in_campaigns(campaign, $campaigns)
  AND in_period(happened_at, $since, $until)
GROUP BY campaign, source, reason
ORDER BY campaign, source, reason;

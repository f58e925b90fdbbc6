-- stuck: messages still scheduled or processing, per campaign, by time since their first check
-- total: stuck scheduled processing age_under_1h age_1h_6h age_6h_24h age_over_24h given_up
--
-- One row per campaign that has messages whose latest status is scheduled or processing.
-- A message's age is the time from its first check (the earliest checked_at in
-- status_checks) to $as_of (NULL = now); the buckets are [0, 1h), [1h, 6h), [6h, 24h) and
-- [24h, ...). oldest_first_check is the earliest first check among the row's messages.
-- given_up counts those that fetch no longer asks: sent (or, without a sent time, first
-- loaded) more than $give_up_after before $as_of.
--
-- Parameters (batstat binds them all; in the duckdb CLI, on a batstat file, whose schema
-- holds the filter macros in_campaigns, in_period and message_time:
-- PREPARE r AS <this file>; then EXECUTE r(campaigns := ['x'], since := NULL, until := NULL, as_of := NULL,
-- give_up_after := INTERVAL 72 HOUR)):
--   $campaigns VARCHAR[]   the campaigns to report; empty = all
--   $since, $until         TIMESTAMPTZ, NULL = unbounded: since <= message time < until, the
--                          message time being sent_at when it parses as a timestamp, else
--                          first_loaded_at
--   $as_of                 TIMESTAMPTZ the ages are measured at; NULL = now
--   $give_up_after         INTERVAL (batstat report --give-up-after, default 72 hours, as
--                          fetch's); NULL = no message is given up
WITH pending AS (
    SELECT message_id, campaign, deliverystatus,
           message_time(sent_at, first_loaded_at)
               < coalesce($as_of::TIMESTAMPTZ, now()) - $give_up_after::INTERVAL AS given_up
    FROM message_status
    WHERE deliverystatus IN ('scheduled', 'processing')
      AND in_campaigns(campaign, $campaigns)
      AND in_period(message_time(sent_at, first_loaded_at), $since, $until)
),
aged AS (
    SELECT
        p.campaign,
        p.deliverystatus,
        p.given_up,
        f.first_checked_at,
        coalesce($as_of::TIMESTAMPTZ, now()) - f.first_checked_at AS age
    FROM pending p
    JOIN (
        -- Only the pending messages' history is aggregated, not all of status_checks.
        SELECT message_id, min(checked_at) AS first_checked_at
        FROM status_checks
        WHERE message_id IN (SELECT message_id FROM pending)
        GROUP BY message_id
    ) f USING (message_id)
)
SELECT
    campaign,
    count(*) AS stuck,
    count(*) FILTER (WHERE deliverystatus = 'scheduled') AS scheduled,
    count(*) FILTER (WHERE deliverystatus = 'processing') AS processing,
    count(*) FILTER (WHERE age < INTERVAL 1 HOUR) AS age_under_1h,
    count(*) FILTER (WHERE age >= INTERVAL 1 HOUR AND age < INTERVAL 6 HOUR) AS age_1h_6h,
    count(*) FILTER (WHERE age >= INTERVAL 6 HOUR AND age < INTERVAL 24 HOUR) AS age_6h_24h,
    count(*) FILTER (WHERE age >= INTERVAL 24 HOUR) AS age_over_24h,
    min(first_checked_at) AS oldest_first_check,
    count(*) FILTER (WHERE given_up) AS given_up
FROM aged
GROUP BY campaign
ORDER BY campaign;

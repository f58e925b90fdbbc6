-- settlement: how fast messages reach a final status, and how many checks that took, per campaign
-- total: messages settled pending given_up
--
-- One row per campaign. A message is settled once it has a terminal answer (delivered,
-- undeliverable, permanenterror); it settled at the timestamp of the first pushed one (the
-- provider's time of the change), else at the checked_at of the first polled one, the
-- moment batstat first learned it. Its settle time
-- counts from when it was sent: its sent_at when that parses as a timestamp, else when
-- batstat first loaded it (message_time); a first terminal check before that (clocks
-- apart) counts as 0. Without a pushed status it is an upper bound: the status may have
-- become final any time since the check before. Every message is in exactly one of:
--   settled       has a terminal answer
--   pending       has none, and is younger than $give_up_after at $as_of
--   given_up      has none, and is older: fetch's schedule no longer asks it
-- so settled + pending + given_up = messages.
--   p50_settle_s, p90_settle_s, p99_settle_s, max_settle_s
--                 settle time in seconds over the settled messages (percentiles
--                 interpolated between the nearest two, as quantile_cont does); NULL
--                 when none settled
--   checks_per_message
--                 answers to batstat's polls (status_checks rows with source 'poll', pushed
--                 ones not counted) / messages: what it cost
--                 to learn the statuses, never-answered messages included (0 when messages
--                 is 0)
--
-- Parameters (batstat binds them all; in the duckdb CLI, on a batstat file, whose schema
-- holds the filter macros in_campaigns, in_period and message_time:
-- PREPARE r AS <this file>; then EXECUTE r(campaigns := ['x'], since := NULL, until := NULL, as_of := NULL,
-- give_up_after := INTERVAL 72 HOUR)):
--   $campaigns VARCHAR[]   the campaigns to report; empty = all
--   $since, $until         TIMESTAMPTZ, NULL = unbounded: since <= message time < until, the
--                          message time being sent_at when it parses as a timestamp, else
--                          first_loaded_at
--   $as_of                 TIMESTAMPTZ ages are measured at; NULL = now
--   $give_up_after         INTERVAL (batstat report --give-up-after, default 72 hours, as
--                          fetch's); NULL = no message is given up
WITH msgs AS (
    SELECT message_id, campaign, message_time(sent_at, first_loaded_at) AS sent
    FROM message_status
    WHERE in_campaigns(campaign, $campaigns)
      AND in_period(message_time(sent_at, first_loaded_at), $since, $until)
),
checks AS (
    -- One pass over the history of the selected messages only.
    SELECT
        message_id,
        -- A pushed terminal status carries the provider's time of the change: exact, where
        -- a poll only bounds it. The first one wins over any polled answer.
        coalesce(min(checked_at) FILTER (WHERE is_terminal(deliverystatus) AND source = 'webhook'),
                 min(checked_at) FILTER (WHERE is_terminal(deliverystatus))) AS settled_at,
        count(*) FILTER (WHERE source = 'poll') AS polls
    FROM status_checks
    WHERE message_id IN (SELECT message_id FROM msgs)
    GROUP BY message_id
),
settle AS (
    SELECT
        m.campaign,
        c.settled_at IS NOT NULL AS settled,
        -- Differences of epochs, not of TIMESTAMPTZ values, whose calendar arithmetic (ICU)
        -- costs a hundred times more per row.
        m.sent < coalesce($as_of::TIMESTAMPTZ, now()) - $give_up_after::INTERVAL AS too_old,
        -- A first terminal check before the sent time (clocks apart) counts as 0; greatest
        -- skips NULLs, so the unsettled are kept out by hand.
        CASE WHEN c.settled_at IS NOT NULL THEN greatest(epoch(c.settled_at) - epoch(m.sent), 0) END AS settle_s,
        coalesce(c.polls, 0) AS polls
    FROM msgs m
    LEFT JOIN checks c USING (message_id)
)
SELECT
    campaign,
    count(*) AS messages,
    count(*) FILTER (WHERE settled) AS settled,
    count(*) FILTER (WHERE NOT settled AND NOT coalesce(too_old, false)) AS pending,
    count(*) FILTER (WHERE NOT settled AND too_old) AS given_up,
    round(quantile_cont(settle_s, 0.50), 3) AS p50_settle_s,
    round(quantile_cont(settle_s, 0.90), 3) AS p90_settle_s,
    round(quantile_cont(settle_s, 0.99), 3) AS p99_settle_s,
    round(max(settle_s), 3) AS max_settle_s,
    round(CASE WHEN count(*) = 0 THEN 0.0 ELSE sum(polls) / count(*) END, 3)::DOUBLE AS checks_per_message
FROM settle
GROUP BY campaign
ORDER BY campaign;

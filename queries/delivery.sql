-- delivery: delivery status counts and delivery rate per campaign
-- total: messages delivered undeliverable permanenterror scheduled processing not_found other unchecked delivery_rate=delivered/messages
--
-- One row per campaign, from message_status (the latest answer per message; a message never
-- answered has a NULL deliverystatus).
--   messages       every message ID of the campaign, answered or not (message_id is the
--                  primary key of messages, so count(*) counts distinct IDs)
--   delivered .. not_found   messages whose latest answer has that status
--   other          an answer whose status is outside the lifecycle (kept verbatim by fetch)
--   unchecked      no answer yet
--   delivery_rate  delivered / messages, a fraction 0-1 (0 when messages is 0)
--
-- Parameters (batstat binds them all; in the duckdb CLI, on a batstat file, whose schema
-- holds the filter macros in_campaigns, in_period and message_time:
-- PREPARE r AS <this file>; then EXECUTE r(campaigns := ['x'], since := NULL, until := NULL)):
--   $campaigns VARCHAR[]   the campaigns to report; empty = all
--   $since, $until         TIMESTAMPTZ, NULL = unbounded: since <= message time < until, the
--                          message time being sent_at when it parses as a timestamp, else
--                          first_loaded_at
SELECT
    campaign,
    count(*) AS messages,
    count(*) FILTER (WHERE deliverystatus = 'delivered') AS delivered,
    count(*) FILTER (WHERE deliverystatus = 'undeliverable') AS undeliverable,
    count(*) FILTER (WHERE deliverystatus = 'permanenterror') AS permanenterror,
    count(*) FILTER (WHERE deliverystatus = 'scheduled') AS scheduled,
    count(*) FILTER (WHERE deliverystatus = 'processing') AS processing,
    count(*) FILTER (WHERE deliverystatus = 'not_found') AS not_found,
    -- NOT IN is NULL for a NULL status, so unanswered messages are not counted here.
    count(*) FILTER (WHERE deliverystatus NOT IN
        ('scheduled', 'processing', 'delivered', 'undeliverable', 'permanenterror', 'not_found')) AS other,
    count(*) FILTER (WHERE deliverystatus IS NULL) AS unchecked,
    CASE WHEN count(*) = 0 THEN 0.0
         ELSE count(*) FILTER (WHERE deliverystatus = 'delivered') / count(*)
    END::DOUBLE AS delivery_rate
FROM message_status
WHERE in_campaigns(campaign, $campaigns)
  AND in_period(message_time(sent_at, first_loaded_at), $since, $until)
GROUP BY campaign
ORDER BY campaign;

-- fallback: how many messages listed, used and were delivered by a fallback, per campaign
-- total: messages with_fallback fallback_used fallback_delivered fallback_rate=fallback_used/messages
--
-- One row per campaign, from message_status (the latest answer per message). Each count
-- counts a message once, however many fallbacks its answer lists.
--   messages            every message ID of the campaign, answered or not
--   with_fallback       the answer listed at least one fallback (an empty list does not count)
--   fallback_used       a listed fallback has a status other than not_used (a fallback
--                       without a status does not count as used)
--   fallback_delivered  a listed fallback has status delivered
--   fallback_rate       fallback_used / messages, a fraction 0-1 (0 when messages is 0)
--
-- Parameters (batstat binds them all; in the duckdb CLI, on a batstat file, whose schema
-- holds the filter macros in_campaigns, in_period and message_time:
-- PREPARE r AS <this file>; then EXECUTE r(campaigns := ['x'], since := NULL, until := NULL)):
--   $campaigns VARCHAR[]   the campaigns to report; empty = all
--   $since, $until         TIMESTAMPTZ, NULL = unbounded: since <= message time < until, the
--                          message time being sent_at when it parses as a timestamp, else
--                          first_loaded_at
WITH listed AS (
    SELECT
        campaign,
        coalesce(json_array_length(fallbacks), 0) AS listed,
        -- NULL when the answer has no fallbacks; [] for an empty list or a non-array
        fallbacks ->> '$[*].status' AS statuses
    FROM message_status
    WHERE in_campaigns(campaign, $campaigns)
      AND in_period(message_time(sent_at, first_loaded_at), $since, $until)
)
SELECT
    campaign,
    count(*) AS messages,
    count(*) FILTER (WHERE listed > 0) AS with_fallback,
    count(*) FILTER (WHERE len(list_filter(statuses, lambda s: s <> 'not_used')) > 0) AS fallback_used,
    count(*) FILTER (WHERE list_contains(statuses, 'delivered')) AS fallback_delivered,
    CASE WHEN count(*) = 0 THEN 0.0
         ELSE count(*) FILTER (WHERE len(list_filter(statuses, lambda s: s <> 'not_used')) > 0) / count(*)
    END::DOUBLE AS fallback_rate
FROM listed
GROUP BY campaign
ORDER BY campaign;

-- channels: messages per campaign, channel and channel status, from extendedStatuses
--
-- One row per campaign, channel and status, from the extended_statuses object of each
-- message's latest answer (e.g. {"viber":"delivered","sms":"not_used"} gives a viber row and
-- an sms row). Messages whose answer has no extended statuses do not appear. A JSON null
-- status is shown as NULL; any other non-string value as its JSON text.
--   messages   distinct messages with that channel status
-- No TOTAL row: a message appears once per channel, so a sum would count it several times.
--
-- Parameters (batstat binds them all; in the duckdb CLI, on a batstat file, whose schema
-- holds the filter macros in_campaigns, in_period and message_time:
-- PREPARE r AS <this file>; then EXECUTE r(campaigns := ['x'], since := NULL, until := NULL)):
--   $campaigns VARCHAR[]   the campaigns to report; empty = all
--   $since, $until         TIMESTAMPTZ, NULL = unbounded: since <= message time < until, the
--                          message time being sent_at when it parses as a timestamp, else
--                          first_loaded_at
WITH extended AS (
    SELECT message_id, campaign, extended_statuses
    FROM message_status
    WHERE json_type(extended_statuses) = 'OBJECT'
      AND in_campaigns(campaign, $campaigns)
      AND in_period(message_time(sent_at, first_loaded_at), $since, $until)
)
SELECT
    e.campaign,
    j.key AS channel,
    j.value ->> '$' AS status,
    count(DISTINCT e.message_id) AS messages
FROM extended e, json_each(e.extended_statuses) j
GROUP BY e.campaign, channel, status
ORDER BY e.campaign, channel, status;

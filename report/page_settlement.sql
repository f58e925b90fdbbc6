-- page_settlement: how soon messages settled, for the settlement curve of the HTML page
--
-- One row per campaign, whether settled, and delay bucket: the messages of the campaign
-- (those of message_status, as every report counts them) whose first terminal status
-- (is_terminal) was seen within within_s seconds of the message time (message_time: the
-- CSV's sent time when it parses, else when batstat first loaded the ID).
--   settled    false: no terminal status seen yet (within_s is NULL)
--   within_s   the smallest bucket edge at or above the delay, in seconds; NULL when the
--              delay is longer than the last edge (7 days). A first check before the
--              message time (clocks apart) counts as a delay of 0.
--   messages   messages in the row
-- The delay is measured to the first check that saw the final status, so it is an upper
-- bound: the message may have settled any time since the check before.
--
-- Parameters as for every report: $campaigns VARCHAR[] (empty = all), $since and $until
-- TIMESTAMPTZ (NULL = unbounded) on the message time.
WITH selected AS (
    SELECT message_id, campaign, message_time(sent_at, first_loaded_at) AS sent
    FROM message_status
    WHERE in_campaigns(campaign, $campaigns)
      AND in_period(message_time(sent_at, first_loaded_at), $since, $until)
),
settled AS (
    -- As the settlement report: a pushed terminal status's own time, else the first poll's.
    SELECT c.message_id,
           coalesce(min(c.checked_at) FILTER (WHERE c.source = 'webhook'), min(c.checked_at)) AS at
    FROM status_checks c
    WHERE is_terminal(c.deliverystatus)
      AND c.message_id IN (SELECT message_id FROM selected)
    GROUP BY c.message_id
),
delays AS (
    SELECT s.campaign, t.at IS NOT NULL AS settled,
           greatest(epoch(t.at) - epoch(s.sent), 0) AS delay_s
    FROM selected s
    LEFT JOIN settled t USING (message_id)
)
SELECT
    campaign,
    settled,
    CASE WHEN settled THEN list_filter(
        [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800, 21600,
         43200, 86400, 172800, 259200, 604800]::DOUBLE[],
        e -> e >= delay_s)[1]
    END AS within_s,
    count(*) AS messages
FROM delays
GROUP BY ALL
ORDER BY campaign, settled, within_s;

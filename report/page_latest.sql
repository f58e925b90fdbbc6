-- page_latest: when the latest answer of the selection was received, for the page's header
--
-- One row: latest_answer, the latest checked_at among the selected messages' latest
-- answers (NULL when none has an answer). Parameters as for every report.
SELECT max(checked_at) AS latest_answer
FROM message_status
WHERE in_campaigns(campaign, $campaigns)
  AND in_period(message_time(sent_at, first_loaded_at), $since, $until);

-- runs: the 100 most recent fetch runs, newest first, with outcome and counts
--
-- One row per run (see the runs table), newest first, at most 100.
--   duration_s   seconds from start to finish; NULL while running or when it crashed
--   outcome      running | ok | partial | failed | interrupted | crashed
--   requested    messages the run set out to ask once its inputs were loaded (per --refresh);
--                a run that stopped early asked fewer: answered + failed got an outcome
-- With campaigns given, only the runs that touched them: loaded one of their messages,
-- checked one, failed to, or rejected one of their input rows.
--
-- Parameters (batstat binds them all; in the duckdb CLI, on a batstat file, whose schema
-- holds the filter macros in_campaigns, in_period and message_time:
-- PREPARE r AS <this file>; then EXECUTE r(campaigns := ['x'], since := NULL, until := NULL)):
--   $campaigns VARCHAR[]   empty = all runs
--   $since, $until         TIMESTAMPTZ, NULL = unbounded: since <= started_at < until
SELECT
    run_id,
    started_at,
    finished_at,
    round(epoch(finished_at - started_at), 3) AS duration_s,
    outcome,
    inputs,
    refresh,
    ids_read,
    rejected,
    requested,
    answered,
    not_found,
    failed,
    retries,
    rate_limited,
    error
FROM runs
WHERE in_period(started_at, $since, $until)
  AND (all_campaigns($campaigns) OR run_id IN (
        SELECT run_id FROM (
            SELECT run_id, campaign FROM messages
            UNION ALL
            SELECT s.run_id, m.campaign FROM status_checks s JOIN messages m USING (message_id)
            UNION ALL
            SELECT f.run_id, m.campaign FROM fetch_errors f JOIN messages m USING (message_id)
            UNION ALL
            SELECT run_id, campaign FROM rejected_rows
        ) touched
        -- list_contains, not in_campaigns: this part matters only when campaigns are named,
        -- and in_campaigns of none would have DuckDB read and join every row for nothing.
        WHERE list_contains($campaigns::VARCHAR[], campaign)))
ORDER BY started_at DESC, run_id DESC
LIMIT 100;

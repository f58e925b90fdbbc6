-- cost: messages, parts and exact cost per campaign and currency
-- total: messages parts cost@currency bill_amount@currency
--
-- One row per campaign and currency, from message_status (the latest answer per message).
--   currency            billCurrency, else rateCurrency, else "". Messages not found, never
--                       answered or answered without a currency fall in the "" row, so the
--                       rows of a campaign add up to its messages.
--   messages            messages in the row
--   parts               sum of partscount (absent counts 0)
--   cost, bill_amount   exact DECIMAL sums (0 when no message of the row has one)
--   cost_per_delivered  cost / delivered messages of the row, rounded to 6 decimals; NULL
--                       when the row has no delivered message
-- The TOTAL row of table/markdown output sums money only when one currency carries it.
--
-- Parameters (batstat binds them all; in the duckdb CLI, on a batstat file, whose schema
-- holds the filter macros in_campaigns, in_period and message_time:
-- PREPARE r AS <this file>; then EXECUTE r(campaigns := ['x'], since := NULL, until := NULL)):
--   $campaigns VARCHAR[]   the campaigns to report; empty = all
--   $since, $until         TIMESTAMPTZ, NULL = unbounded: since <= message time < until, the
--                          message time being sent_at when it parses as a timestamp, else
--                          first_loaded_at
WITH priced AS (
    SELECT
        campaign,
        CASE WHEN deliverystatus IS NULL OR deliverystatus = 'not_found' THEN ''
             ELSE coalesce(nullif(bill_currency, ''), nullif(rate_currency, ''), '')
        END AS currency,
        deliverystatus,
        partscount,
        cost,
        bill_amount
    FROM message_status
    WHERE in_campaigns(campaign, $campaigns)
      AND in_period(message_time(sent_at, first_loaded_at), $since, $until)
)
SELECT
    campaign,
    currency,
    count(*) AS messages,
    coalesce(sum(partscount), 0)::BIGINT AS parts,
    coalesce(sum(cost), 0)::DECIMAL(38,6) AS cost,
    coalesce(sum(bill_amount), 0)::DECIMAL(38,6) AS bill_amount,
    -- DuckDB divides a DECIMAL by an integer in DOUBLE; the cast back rounds to 6 places,
    -- exact for any amount below 10^9.
    CASE WHEN count(*) FILTER (WHERE deliverystatus = 'delivered') = 0 THEN NULL
         ELSE coalesce(sum(cost), 0) / count(*) FILTER (WHERE deliverystatus = 'delivered')
    END::DECIMAL(18,6) AS cost_per_delivered
FROM priced
GROUP BY campaign, currency
ORDER BY campaign, currency;

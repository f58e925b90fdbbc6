-- Fixture for the report tests (report/report_test.go), loaded into a fresh store.Open'd
-- database. Expected figures are worked out by hand in report_test.go; the goldens beside
-- this file must agree with them. Reports are run with as_of = 2025-03-10 12:00:00+00.
--
-- Campaigns:
--   spring  10 messages: delivered x4 (one via an older 'processing' check), undeliverable
--           (whose older check listed fallbacks that the latest does not), processing
--           (first checked 30 h before as_of), scheduled (2 h before as_of), not_found, an
--           unknown status with a cost but no currency, never answered; currencies UAH, EUR
--           and none; fallbacks and extended statuses
--   summer  4 messages: delivered x3, permanenterror; UAH only; no fallbacks; no sent_at
--   quiet   2 messages, never answered (delivery_rate 0); sent_at not a timestamp

INSERT INTO runs (run_id, started_at, finished_at, outcome, api_url, inputs, refresh,
                  ids_read, rejected, requested, answered, not_found, failed, retries, rate_limited, error)
VALUES
    (1, '2025-03-09 06:00:00+00', '2025-03-09 06:05:00+00', 'partial', 'http://fake', 'spring.csv summer.csv', 'pending',
     14, 2, 14, 13, 0, 1, 3, 2, NULL),
    (2, '2025-03-10 10:00:00+00', '2025-03-10 10:02:30+00', 'partial', 'http://fake', 'spring.csv quiet.csv', 'pending',
     12, 1, 10, 7, 1, 3, 6, 0, NULL),
    (3, '2025-03-10 11:00:00+00', NULL, 'crashed', 'http://fake', 'summer.csv', 'pending',
     0, 0, 0, 0, 0, 0, 0, 0, NULL);

INSERT INTO messages (message_id, campaign, source_file, source_line, first_loaded_at, run_id,
                      recipient, sent_at, customer_message_id, messagelist_id)
VALUES
    ('sp-01', 'spring', 'spring.csv',  2, '2025-03-09 05:59:00+00', 1, '380500000001', '2025-03-08 18:00:00+00', 'c-1',  NULL),
    ('sp-02', 'spring', 'spring.csv',  3, '2025-03-09 05:59:00+00', 1, '380500000002', '2025-03-08 18:00:00+00', 'c-2',  NULL),
    ('sp-03', 'spring', 'spring.csv',  4, '2025-03-09 05:59:00+00', 1, '380500000003', '2025-03-08 18:00:00+00', 'c-3',  NULL),
    ('sp-04', 'spring', 'spring.csv',  5, '2025-03-09 05:59:00+00', 1, '380500000004', '2025-03-08 18:00:00+00', 'c-4',  NULL),
    ('sp-05', 'spring', 'spring.csv',  6, '2025-03-09 05:59:00+00', 1, '380500000005', '2025-03-08 18:00:00+00', 'c-5',  NULL),
    ('sp-06', 'spring', 'spring.csv',  7, '2025-03-09 05:59:00+00', 1, '380500000006', '2025-03-08 18:00:00+00', 'c-6',  NULL),
    ('sp-07', 'spring', 'spring.csv',  8, '2025-03-09 05:59:00+00', 1, '380500000007', '2025-03-08 18:00:00+00', 'c-7',  NULL),
    ('sp-08', 'spring', 'spring.csv',  9, '2025-03-09 05:59:00+00', 1, '380500000008', '2025-03-08 18:00:00+00', 'c-8',  NULL),
    ('sp-09', 'spring', 'spring.csv', 10, '2025-03-09 05:59:00+00', 1, '380500000009', '2025-03-08 18:00:00+00', 'c-9',  NULL),
    ('sp-10', 'spring', 'spring.csv', 11, '2025-03-09 05:59:00+00', 1, '380500000010', '2025-03-08 18:00:00+00', 'c-10', NULL),
    ('su-1',  'summer', 'summer.csv',  2, '2025-03-09 05:59:30+00', 1, '380600000001', NULL, NULL, NULL),
    ('su-2',  'summer', 'summer.csv',  3, '2025-03-09 05:59:30+00', 1, '380600000002', NULL, NULL, NULL),
    ('su-3',  'summer', 'summer.csv',  4, '2025-03-09 05:59:30+00', 1, '380600000003', NULL, NULL, NULL),
    ('su-4',  'summer', 'summer.csv',  5, '2025-03-09 05:59:30+00', 1, '380600000004', NULL, NULL, NULL),
    ('qu-1',  'quiet',  'quiet.csv',   2, '2025-03-10 09:59:00+00', 2, '380700000001', 'last tuesday', NULL, NULL),
    ('qu-2',  'quiet',  'quiet.csv',   3, '2025-03-10 09:59:00+00', 2, '380700000002', 'last tuesday', NULL, NULL);

INSERT INTO status_checks (message_id, run_id, checked_at, http_status, deliverystatus, partscount, cost,
                           messagelist_id, rate, rate_amount, rate_currency, bill_amount, bill_currency,
                           fallbacks, extended_statuses, attempts, raw)
VALUES
    -- spring, run 1 (older answers: only the latest per message counts)
    ('sp-01', 1, '2025-03-09 06:01:00+00', 200, 'processing', 1, 9.990000, 77, NULL, NULL, NULL, 9.990000, 'EUR',
     '[{"type":"sms","status":"delivered"}]', '{"sms":"delivered"}', 1, '{}'),
    ('sp-03', 1, '2025-03-09 06:01:00+00', 200, 'processing', 1, NULL, 77, NULL, NULL, NULL, NULL, NULL,
     '[{"type":"sms","status":"delivered"}]', '{"sms":"delivered"}', 1, '{}'),
    ('sp-04', 1, '2025-03-09 06:00:00+00', 200, 'scheduled', NULL, NULL, 77, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, 1, '{}'),
    -- spring, run 2 (latest answers)
    ('sp-01', 2, '2025-03-10 10:00:10+00', 200, 'delivered', 1, 0.050000, 77, 0.050000, 0.050000, 'UAH', 0.050000, 'UAH',
     '[{"type":"sms","status":"not_used"}]', '{"viber":"delivered","sms":"not_used"}', 1, '{}'),
    ('sp-02', 2, '2025-03-10 10:00:10+00', 200, 'delivered', 2, 0.010000, 77, 0.005000, 0.010000, 'EUR', NULL, NULL,
     '[{"type":"viber","status":"undeliverable"},{"type":"sms","status":"delivered"}]',
     '{"viber":"undeliverable","sms":"delivered"}', 2, '{}'),
    ('sp-03', 2, '2025-03-10 10:00:10+00', 200, 'undeliverable', 1, 0.050000, 77, NULL, NULL, NULL, 0.050000, 'UAH',
     '[]', NULL, 1, '{}'),
    ('sp-04', 2, '2025-03-10 10:00:10+00', 200, 'processing', NULL, NULL, 77, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, 1, '{}'),
    ('sp-05', 2, '2025-03-10 10:00:10+00', 404, 'not_found', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, 1, '{"error":"not found"}'),
    ('sp-06', 2, '2025-03-10 10:00:10+00', 200, 'queued_for_review', 1, 0.020000, 77, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, 1, '{}'),
    ('sp-08', 2, '2025-03-10 10:00:10+00', 200, 'delivered', 3, 0.123456, 77, 0.041152, 0.110000, 'EUR', 0.100000, 'UAH',
     '[{"type":"sms","status":"delivered"},{"type":"rcs","status":"delivered"}]',
     '{"viber":"expired","sms":"delivered"}', 1, '{}'),
    ('sp-09', 2, '2025-03-10 10:00:00+00', 200, 'scheduled', NULL, NULL, 77, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, 1, '{}'),
    ('sp-10', 2, '2025-03-10 10:00:10+00', 200, 'delivered', 1, 0.050000, 77, 0.050000, 0.050000, 'UAH', 0.050000, 'UAH',
     '[{"type":"sms","status":"not_used"}]', '{"viber":"delivered"}', 1, '{}'),
    -- summer, run 1
    ('su-1', 1, '2025-03-09 06:02:00+00', 200, 'delivered', 1, 0.040000, 78, NULL, NULL, NULL, 0.040000, 'UAH',
     NULL, '{"sms":"delivered"}', 1, '{}'),
    ('su-2', 1, '2025-03-09 06:02:00+00', 200, 'delivered', 1, 0.040000, 78, NULL, NULL, NULL, 0.040000, 'UAH',
     NULL, NULL, 1, '{}'),
    ('su-3', 1, '2025-03-09 06:02:00+00', 200, 'delivered', 1, 0.050000, 78, NULL, NULL, NULL, 0.050000, 'UAH',
     NULL, NULL, 1, '{}'),
    ('su-4', 1, '2025-03-09 06:02:00+00', 200, 'permanenterror', NULL, 0.000000, 78, NULL, NULL, NULL, NULL, 'UAH',
     NULL, NULL, 1, '{}');

INSERT INTO fetch_errors (run_id, message_id, failed_at, attempts, kind, http_status, error, last_body)
VALUES
    (1, 'sp-07', '2025-03-09 06:04:00+00', 5, 'rate_limited', 429, '429 Too Many Requests after 5 attempts', '{"error":"slow down"}'),
    (2, 'sp-07', '2025-03-10 10:01:00+00', 5, 'server_error', 503, '503 Service Unavailable after 5 attempts', '<html>busy</html>'),
    (2, 'qu-1',  '2025-03-10 10:01:10+00', 5, 'network', NULL, 'dial tcp: connection refused', NULL),
    (2, 'qu-2',  '2025-03-10 10:01:20+00', 5, 'network', NULL, 'dial tcp: connection refused', NULL);

INSERT INTO rejected_rows (run_id, rejected_at, file, line, campaign, message_id, reason, raw)
VALUES
    (1,    '2025-03-09 05:59:00+00', 'spring.csv', 12, 'spring', NULL,    'empty id',     ',380500000099'),
    (1,    '2025-03-09 05:59:00+00', 'spring.csv', 13, 'spring', 'sp-01', 'duplicate of spring.csv:2', 'sp-01,380500000001'),
    (1,    '2025-03-09 05:59:00+00', 'spring.csv', 14, 'spring', 'sp-02', 'duplicate of spring.csv:3', 'sp-02,380500000002'),
    (2,    '2025-03-10 09:59:00+00', 'quiet.csv',   4, 'quiet',  NULL,    'empty id',     ','),
    (2,    '2025-03-10 09:59:00+00', 'quiet.csv',   5, 'quiet',  'sp-03', 'already in campaign spring', 'sp-03'),
    (NULL, '2025-03-10 09:59:00+00', 'orphan.csv',  2, NULL,     NULL,    'no campaign',  'x');

-- What the fetch writer maintains beside status_checks: the latest answer per message.
INSERT INTO status_latest
SELECT * EXCLUDE (raw) FROM status_checks
QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY is_terminal(deliverystatus) DESC, checked_at DESC, run_id DESC) = 1;

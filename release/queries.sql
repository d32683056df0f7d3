-- Example queries over a deepcac2 release, for DuckDB (`deepcac2 query REL_DIR "<one query>"`,
-- or `deepcac2.open_release(REL_DIR).sql(...)`): each tables/<name>.parquet is a view <name>.
-- Outside the toolkit, create the views first, e.g.
--   CREATE VIEW cac_series AS SELECT * FROM read_parquet('tables/cac_series.parquet');
-- CI runs every query below on a built release (tests/release/test_queries_sql.py).
-- Risk labels are spelled the same in the tables and the SR: 'very low', 'low', 'moderate', 'high'.

-- name: category_at_t0
-- One row per participant at baseline (T0): one series each (is_primary), its DeepCAC risk category.
SELECT PatientID, SeriesInstanceUID, agatston_deepcac, risk_deepcac_deepcac AS category
FROM cac_series
WHERE study_year = 0 AND is_primary
ORDER BY PatientID;

-- name: categories_at_t0
-- Participants per DeepCAC risk category at T0.
SELECT risk_deepcac_deepcac AS category, count(DISTINCT PatientID) AS participants
FROM cac_series
WHERE study_year = 0 AND is_primary
GROUP BY category
ORDER BY category;

-- name: progression_t0_t2
-- Progression per participant from T0 to T2, one series per round (is_primary).
SELECT t0.PatientID,
       t0.agatston_deepcac AS agatston_t0,
       t2.agatston_deepcac AS agatston_t2,
       t2.agatston_deepcac - t0.agatston_deepcac AS change,
       t0.risk_deepcac_deepcac AS category_t0,
       t2.risk_deepcac_deepcac AS category_t2
FROM cac_series AS t0
JOIN cac_series AS t2 ON t2.PatientID = t0.PatientID
WHERE t0.study_year = 0 AND t0.is_primary
  AND t2.study_year = 2 AND t2.is_primary
ORDER BY t0.PatientID;

-- name: exclusions_by_rule
-- What the cohort step left out, per rule: series and participants.
SELECT rule, rule_kind, count(*) AS series, count(DISTINCT PatientID) AS participants
FROM exclusions
GROUP BY rule, rule_kind
ORDER BY series DESC, rule;

-- name: failures_by_code
-- What failed, per stable error code.
SELECT error_code, count(DISTINCT SeriesInstanceUID) AS series
FROM failures
GROUP BY error_code
ORDER BY series DESC, error_code;

-- name: measurements_with_series
-- measurements keeps IDC's shape: its SeriesInstanceUID is the SR's series, not the CT's.
-- Join the CT's row through sourceSegmentedSeriesUID (USING (SeriesInstanceUID) would match nothing).
SELECT m.sourceSegmentedSeriesUID AS ct_series,
       s.PatientID,
       s.study_year,
       m.trackingIdentifier,
       m.Quantity.CodeMeaning AS quantity,
       m.Value,
       m.Units.CodeValue AS unit
FROM measurements AS m
JOIN cac_series AS s ON s.SeriesInstanceUID = m.sourceSegmentedSeriesUID
WHERE s.is_primary
ORDER BY ct_series, m.measurementGroup_number, quantity;

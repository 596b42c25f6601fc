-- An acknowledgement records how the hit was verified with the state's systems (which system,
-- its answer, the query's reference) and the operator's note, beside who and when.
ALTER TABLE alerts ADD COLUMN state_check TEXT;
ALTER TABLE alerts ADD COLUMN ack_note TEXT;

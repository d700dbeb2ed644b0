-- Keyset pages of the environment list and the auditors' view (issue 11): both read
-- `ORDER BY updated_at DESC, id` from a cursor `(updated_at, id)`. This index matches that order
-- exactly, so any page is one bounded range scan and page 100 costs what page 1 costs. It
-- replaces `environments_company_updated (company_id, updated_at DESC)`, its prefix.
CREATE INDEX environments_company_keyset ON environments (company_id, updated_at DESC, id);
DROP INDEX environments_company_updated;

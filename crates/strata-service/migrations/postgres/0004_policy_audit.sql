-- Policy and audit: what a build may do (the policy's grant at submit), revoked tokens
-- kept for the record, and the audit log of every state-changing call.
ALTER TABLE builds ADD COLUMN network TEXT;
ALTER TABLE builds ADD COLUMN remote_content BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tokens ADD COLUMN revoked BIGINT;
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    status BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

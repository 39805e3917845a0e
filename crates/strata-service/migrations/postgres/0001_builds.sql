-- Times are Unix milliseconds (BIGINT): the one time type both backends and sqlx's Any
-- driver agree on.
CREATE TABLE tokens (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created BIGINT NOT NULL
);
CREATE TABLE builds (
    id BIGSERIAL PRIMARY KEY,
    state TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    submitter TEXT NOT NULL,
    source_url TEXT NOT NULL,
    source_ref TEXT,
    source_commit TEXT NOT NULL,
    source_path TEXT,
    images TEXT NOT NULL,
    scratch BIGINT NOT NULL,
    created BIGINT NOT NULL,
    queued_since BIGINT,
    started BIGINT,
    run_started BIGINT,
    finished BIGINT,
    queued_ms BIGINT NOT NULL DEFAULT 0,
    run_ms BIGINT NOT NULL DEFAULT 0,
    timeout_s BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    worker TEXT,
    lease_hash TEXT,
    lease_expires BIGINT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    reason TEXT,
    result TEXT,
    log_size BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX builds_state ON builds (state, id);
CREATE TABLE build_images (
    build_id BIGINT NOT NULL REFERENCES builds (id),
    name TEXT NOT NULL,
    PRIMARY KEY (build_id, name)
);
CREATE INDEX build_images_name ON build_images (name, build_id);
CREATE TABLE attempts (
    build_id BIGINT NOT NULL REFERENCES builds (id),
    number BIGINT NOT NULL,
    worker TEXT NOT NULL,
    started BIGINT NOT NULL,
    ended BIGINT,
    outcome TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (build_id, number)
);
CREATE TABLE build_events (
    id BIGSERIAL PRIMARY KEY,
    build_id BIGINT NOT NULL REFERENCES builds (id),
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX build_events_build ON build_events (build_id, id);
CREATE TABLE log_chunks (
    build_id BIGINT NOT NULL REFERENCES builds (id),
    start_at BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (build_id, start_at)
);

-- Automatic rebuilds: the registered images, the repositories they are composed from,
-- the floating tags and the builds they point at, and the rebuild events.
CREATE TABLE tracked_images (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    source_url TEXT NOT NULL,
    source_ref TEXT,
    source_path TEXT,
    source_commit TEXT NOT NULL,
    build_id BIGINT NOT NULL REFERENCES builds (id),
    parent TEXT,
    base_name TEXT,
    content TEXT,
    input_digest TEXT,
    -- Who submitted the image (rebuilds act with this token's rights under the policy).
    owner TEXT,
    updated BIGINT NOT NULL
);
CREATE TABLE image_repos (
    image TEXT NOT NULL,
    url TEXT NOT NULL,
    -- The repomd.xml digest the image's last build resolved against.
    repomd TEXT,
    PRIMARY KEY (image, url)
);
CREATE INDEX image_repos_url ON image_repos (url);
CREATE TABLE watched_repos (
    url TEXT PRIMARY KEY,
    repomd TEXT,
    expire_s BIGINT,
    checked BIGINT,
    changed BIGINT
);
CREATE TABLE image_tags (
    image TEXT NOT NULL,
    tag TEXT NOT NULL,
    build_id BIGINT NOT NULL REFERENCES builds (id),
    digest TEXT NOT NULL,
    moved BIGINT NOT NULL,
    PRIMARY KEY (image, tag)
);
CREATE TABLE rebuild_events (
    id BIGSERIAL PRIMARY KEY,
    trigger_kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    noticed BIGINT NOT NULL,
    finished BIGINT,
    state TEXT NOT NULL,
    plan TEXT NOT NULL
);
ALTER TABLE builds ADD COLUMN track BIGINT NOT NULL DEFAULT 1;
ALTER TABLE builds ADD COLUMN parent_build BIGINT;
ALTER TABLE builds ADD COLUMN rebuild_event BIGINT;
ALTER TABLE builds ADD COLUMN rebuild TEXT;
ALTER TABLE builds ADD COLUMN input_hash TEXT;
CREATE INDEX builds_parent ON builds (parent_build);
CREATE INDEX builds_event ON builds (rebuild_event);

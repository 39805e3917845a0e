-- One row whose version every state change of a build increments in its own transaction
-- (Db::event): readers that cache what they listed compare it instead of re-reading the
-- builds. Taken last in each transaction (after the builds rows), so it adds no lock-order
-- cycle; on PostgreSQL its row lock orders the versions as the commits.
CREATE TABLE state_version (
    id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO state_version (id, version) VALUES (1, 0);

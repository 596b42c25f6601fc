-- Deployment events from the trailers (see migrations/sqlite/0006_deployments.sql).
CREATE TABLE deployment_events (
    trailer_id  TEXT             NOT NULL,
    event_id    BIGINT           NOT NULL,
    kind        TEXT             NOT NULL,
    at          BIGINT           NOT NULL,
    lat         DOUBLE PRECISION NOT NULL,
    lon         DOUBLE PRECISION NOT NULL,
    note        TEXT             NOT NULL,
    received_at BIGINT           NOT NULL,
    PRIMARY KEY (trailer_id, event_id)
);

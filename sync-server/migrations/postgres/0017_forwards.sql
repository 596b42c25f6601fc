-- Hits delivered to the agency's dispatch systems (`[[forward]]` in the configuration): each
-- alert once per target, when it was delivered. Ids only: the alert itself is in `alerts`.
CREATE TABLE alert_forwards (
    target       TEXT    NOT NULL,
    trailer_id   TEXT    NOT NULL,
    alert_id     BIGINT NOT NULL,
    delivered_ms BIGINT NOT NULL,
    PRIMARY KEY (target, trailer_id, alert_id)
);

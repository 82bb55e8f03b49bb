-- IVR applications kept by name (`/v1/ivr`), copied into a campaign's settings when the
-- campaign names one (`ivrApp`). The config is the application as stored settings
-- (snake_case JSON).
CREATE TABLE ivr_apps (
    name        TEXT PRIMARY KEY,
    config      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

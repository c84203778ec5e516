-- Environments: versioned course profiles, course → profile mappings, and environments with their
-- state history.

-- One id per installation (shared by every replica), so that containers this installation started
-- can be told apart from anything else on an engine.
CREATE TABLE installation (
    id text PRIMARY KEY DEFAULT md5(random()::text || clock_timestamp()::text),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation DEFAULT VALUES;

-- Courses get a short opaque slug for environment URLs (/user/<user slug>/<course slug>/).
ALTER TABLE courses ADD COLUMN slug text UNIQUE DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 8);
UPDATE courses SET slug = substr(md5(random()::text || id::text), 1, 8) WHERE slug IS NULL;
ALTER TABLE courses ALTER COLUMN slug SET NOT NULL;

-- Profiles as module teams wrote them; every change is a new version.
CREATE TABLE profiles (
    slug text PRIMARY KEY,
    current_version integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE profile_versions (
    slug text NOT NULL REFERENCES profiles (slug) ON DELETE CASCADE,
    version integer NOT NULL,
    spec jsonb NOT NULL,
    source text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (slug, version)
);

-- Explicit course → profile mappings (`portal course map`). consumer_key '' applies to every consumer.
CREATE TABLE course_profile_mappings (
    consumer_key text NOT NULL DEFAULT '',
    context_id text NOT NULL,
    profile_slug text NOT NULL REFERENCES profiles (slug),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_key, context_id)
);

-- One row per environment run.
CREATE TABLE environments (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    course_id bigint NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    profile_slug text NOT NULL,
    profile_version integer NOT NULL,
    engine text NOT NULL,
    state text NOT NULL CHECK (state IN ('requested', 'starting', 'ready', 'stopping', 'stopped', 'failed')),
    message text,
    container_id text,
    container_name text NOT NULL,
    upstream text,
    token_sealed bytea NOT NULL,
    home_volume text NOT NULL,
    base_path text NOT NULL,
    stop_reason text,
    -- How long the start took (starting → ready) and how much of it was the portal's own work
    -- (records, preparation) rather than the engine's and Jupyter's.
    start_ms integer,
    portal_ms integer,
    requested_at timestamptz NOT NULL DEFAULT now(),
    starting_at timestamptz,
    ready_at timestamptz,
    stopping_at timestamptz,
    stopped_at timestamptz,
    failed_at timestamptz,
    FOREIGN KEY (profile_slug, profile_version) REFERENCES profile_versions (slug, version)
);
-- Exactly one live environment per (student, course): simultaneous launches join the same start.
CREATE UNIQUE INDEX environments_one_live ON environments (user_id, course_id) WHERE state IN ('requested', 'starting', 'ready', 'stopping');
CREATE INDEX environments_live ON environments (state) WHERE state IN ('requested', 'starting', 'ready', 'stopping');

-- Every state change, with a message for people.
CREATE TABLE environment_events (
    id bigserial PRIMARY KEY,
    environment_id bigint NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT now(),
    state text NOT NULL,
    message text
);
CREATE INDEX environment_events_environment ON environment_events (environment_id, at);

-- Admission: the pool of hosts, what each run requested and the price in force when it started,
-- refused starts, and spend alerts. Usage is a view over the runs, so finance reports are queries.

-- Machines that run environments. Declared in the configuration file (source 'config', rewritten
-- at every start) or with `portal host add` (source 'cli'). Health is kept by every replica's
-- monitor; `draining` is an operator's decision.
CREATE TABLE hosts (
    name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    kind text NOT NULL DEFAULT 'docker' CHECK (kind IN ('docker', 'process')),
    endpoint text NOT NULL,
    publish_address text NOT NULL,
    -- Paths of the CA, client certificate and key for TLS (never the keys themselves).
    tls jsonb,
    cpu numeric NOT NULL CHECK (cpu > 0),
    memory_bytes bigint NOT NULL CHECK (memory_bytes > 0),
    -- [{"id": "0", "model": "A100"}, …]
    gpus jsonb NOT NULL DEFAULT '[]',
    labels jsonb NOT NULL DEFAULT '{}',
    draining boolean NOT NULL DEFAULT false,
    health text NOT NULL DEFAULT 'unknown' CHECK (health IN ('unknown', 'up', 'down')),
    health_message text,
    checked_at timestamptz,
    down_since timestamptz,
    source text NOT NULL DEFAULT 'cli' CHECK (source IN ('config', 'cli')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- `environments.engine` now names the host a run was placed on. Every earlier run ran on the one
-- engine the configuration named, which becomes the host 'local'.
UPDATE environments SET engine = 'local';

-- What each run requested, the GPUs it holds, and the rate card in force when it was admitted.
ALTER TABLE environments
    ADD COLUMN cpu numeric,
    ADD COLUMN memory_bytes bigint,
    ADD COLUMN gpus integer NOT NULL DEFAULT 0,
    ADD COLUMN gpu_ids text[] NOT NULL DEFAULT '{}',
    ADD COLUMN max_lifetime_seconds integer,
    ADD COLUMN rate_card text,
    ADD COLUMN currency text,
    ADD COLUMN rate_cpu_core_hour numeric,
    ADD COLUMN rate_memory_gib_hour numeric,
    ADD COLUMN rate_gpu_hour numeric,
    -- The price of one hour of what was requested, and the most the run can cost (its maximum
    -- lifetime at that price), reserved against the course's budget while it is live.
    ADD COLUMN hourly_cost numeric NOT NULL DEFAULT 0,
    ADD COLUMN reserved_cost numeric NOT NULL DEFAULT 0;
UPDATE environments e SET cpu = (pv.spec->>'cpu')::numeric, memory_bytes = (pv.spec->>'memoryBytes')::bigint,
    gpus = COALESCE((pv.spec->>'gpus')::integer, 0), max_lifetime_seconds = (pv.spec->>'maxLifetimeSeconds')::integer
FROM profile_versions pv WHERE pv.slug = e.profile_slug AND pv.version = e.profile_version;
CREATE INDEX environments_course_requested ON environments (course_id, requested_at);

-- Profiles gained required host labels; stored specs get the (empty) default.
UPDATE profile_versions SET spec = spec || '{"hostLabels": {}}'::jsonb WHERE NOT spec ? 'hostLabels';

-- Starts admission refused (caps, no room, spend), with the reason shown to the student.
CREATE TABLE admission_refusals (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    course_id bigint REFERENCES courses (id) ON DELETE SET NULL,
    profile_slug text,
    profile_version integer,
    reason text NOT NULL,
    message text NOT NULL
);
CREATE INDEX admission_refusals_at ON admission_refusals USING brin (at);

-- A course's budget alerts, one per level per period, whichever replica noticed first.
CREATE TABLE spend_alerts (
    course_id bigint NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    level text NOT NULL CHECK (level IN ('warning', 'spent')),
    committed numeric NOT NULL,
    amount numeric NOT NULL,
    currency text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (course_id, period_start, level)
);

-- One row per run: who, where, what was requested, the price, when it started, became ready and
-- stopped, why it stopped, and what it cost. A run is charged from the start of its start
-- (starting_at) to its stop or failure; a live run is charged up to now.
CREATE VIEW usage_sessions AS
SELECT e.id AS environment_id,
       e.user_id, u.slug AS user_slug, u.consumer_key, u.lti_user_id,
       e.course_id, c.slug AS course_slug, c.context_id, c.label AS course_label, c.title AS course_title,
       e.profile_slug, e.profile_version, e.engine AS host,
       e.cpu, e.memory_bytes, e.gpus, e.gpu_ids,
       e.rate_card, e.currency, e.rate_cpu_core_hour, e.rate_memory_gib_hour, e.rate_gpu_hour, e.hourly_cost, e.reserved_cost,
       e.requested_at, e.starting_at AS started_at, e.ready_at, COALESCE(e.stopped_at, e.failed_at) AS stopped_at,
       e.state, e.stop_reason,
       COALESCE(EXTRACT(EPOCH FROM (COALESCE(e.stopped_at, e.failed_at, now()) - e.starting_at)), 0) AS seconds,
       e.hourly_cost * COALESCE(EXTRACT(EPOCH FROM (COALESCE(e.stopped_at, e.failed_at, now()) - e.starting_at)), 0) / 3600 AS cost
FROM environments e JOIN users u ON u.id = e.user_id JOIN courses c ON c.id = e.course_id;

-- The proxy: every replica hears about environment changes, activity feeds the idle culler, and
-- one-time hand-over codes move a browser between origins (iframe fallback, environment origin).

-- Last activity the proxies saw (coalesced: written every few seconds, not per request).
ALTER TABLE environments ADD COLUMN last_activity_at timestamptz;

-- Route changes are announced to every portal process (LISTEN portal_environments); the payload
-- is the environment id. Activity updates do not notify.
CREATE FUNCTION portal_environment_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portal_environments', NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER environments_changed AFTER INSERT OR UPDATE OF state, upstream ON environments
    FOR EACH ROW EXECUTE FUNCTION portal_environment_changed();

-- A session belongs to one origin: the portal's own pages, or the origin that serves environments
-- when student content is kept apart from staff and finance pages.
ALTER TABLE sessions ADD COLUMN scope text NOT NULL DEFAULT 'portal' CHECK (scope IN ('portal', 'environments'));

-- Single-use, short-lived codes that open a session of `scope` for the holder of `parent_hash`'s
-- session in another browsing context or origin, then send the browser to `next_path`.
CREATE TABLE handover_codes (
    code_hash bytea PRIMARY KEY,
    parent_hash bytea NOT NULL REFERENCES sessions (token_hash) ON DELETE CASCADE,
    scope text NOT NULL CHECK (scope IN ('portal', 'environments')),
    next_path text NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX handover_codes_expires_at ON handover_codes (expires_at);

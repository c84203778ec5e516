-- "Live", defined once. An environment is live while it is requested, starting, ready or stopping:
-- it holds its (student, course) slot, counts against the caps and its host's room, reserves its
-- cost against the course's budget and has a route in the proxy. Every query and both partial
-- indexes ask portal_is_live(state); the portal's EnvironmentState.isLive is the same rule in
-- Swift, and a test checks that the two agree for every state.
--
-- A one-expression SQL function marked IMMUTABLE is inlined by the planner, in queries and in index
-- predicates alike, so `WHERE portal_is_live(e.state)` still matches the partial indexes. Changing
-- the rule takes a new migration that replaces the function and recreates the indexes below (an
-- index keeps the rows the function chose when they were written).
CREATE FUNCTION portal_is_live(p_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_state IN ('requested', 'starting', 'ready', 'stopping')
$$;

-- The partial indexes of 0003, recreated on the function: the same rows, the same names.
DROP INDEX environments_one_live;
CREATE UNIQUE INDEX environments_one_live ON environments (user_id, course_id) WHERE portal_is_live(state);
DROP INDEX environments_live;
CREATE INDEX environments_live ON environments (state) WHERE portal_is_live(state);

-- Foundation: LTI 1.1 consumers, nonces, users, courses, enrolments, launches and browser sessions.

-- LTI 1.1 consumers added with `portal consumer add` (consumers in the configuration file are not
-- stored). The secret is sealed with AES-GCM under the portal's secret key.
CREATE TABLE consumers (
    key text PRIMARY KEY CHECK (key <> ''),
    name text NOT NULL DEFAULT '',
    secret_sealed bytea NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Each OAuth nonce is accepted once per consumer, for as long as its timestamp is inside the window.
CREATE TABLE lti_nonces (
    consumer_key text NOT NULL,
    nonce text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (consumer_key, nonce)
);
CREATE INDEX lti_nonces_expires_at ON lti_nonces (expires_at);

-- People, keyed by (consumer, LTI user_id), never by email. The slug is random, stable and opaque:
-- it appears in URLs instead of anything personal.
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    consumer_key text NOT NULL,
    lti_user_id text NOT NULL,
    slug text NOT NULL UNIQUE,
    full_name text,
    given_name text,
    family_name text,
    email text,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_launch_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer_key, lti_user_id)
);

-- Courses, keyed by (consumer, context_id).
CREATE TABLE courses (
    id bigserial PRIMARY KEY,
    consumer_key text NOT NULL,
    context_id text NOT NULL,
    title text,
    label text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer_key, context_id)
);

-- A person's role in a course, as of their latest launch.
CREATE TABLE enrolments (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    course_id bigint NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('learner', 'course_staff', 'admin')),
    lti_roles text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, course_id)
);

-- Every launch, accepted or refused, with its reason. Never a secret or a signature.
CREATE TABLE launches (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    outcome text NOT NULL CHECK (outcome IN ('accepted', 'refused')),
    reason text,
    message text,
    consumer_key text,
    lti_user_id text,
    context_id text,
    resource_link_id text,
    user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    course_id bigint REFERENCES courses (id) ON DELETE SET NULL,
    role text,
    lti_roles text,
    custom jsonb NOT NULL DEFAULT '{}',
    return_url text,
    outcome_service_url text,
    result_sourcedid text,
    remote_addr text,
    request_id text
);
CREATE INDEX launches_at ON launches (at);
CREATE INDEX launches_refused ON launches (at) WHERE outcome = 'refused';

-- Browser sessions. Only a SHA-256 of the cookie's token is stored.
CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    course_id bigint REFERENCES courses (id) ON DELETE CASCADE,
    launch_id bigint NOT NULL REFERENCES launches (id) ON DELETE CASCADE,
    role text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);

-- Accepts a verified launch in one round trip: upserts the user, the course and the enrolment,
-- records the launch, ends the browser's earlier session and opens a new one.
CREATE FUNCTION portal_accept_launch(
    p_consumer_key text,
    p_lti_user_id text,
    p_new_slug text,
    p_full_name text,
    p_given_name text,
    p_family_name text,
    p_email text,
    p_context_id text,
    p_context_title text,
    p_context_label text,
    p_role text,
    p_lti_roles text,
    p_resource_link_id text,
    p_custom jsonb,
    p_return_url text,
    p_outcome_service_url text,
    p_result_sourcedid text,
    p_remote_addr text,
    p_request_id text,
    p_token_hash bytea,
    p_previous_token_hash bytea,
    p_session_seconds integer
) RETURNS TABLE (user_id bigint, user_slug text, course_id bigint, launch_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_user_id bigint;
    v_slug text;
    v_course_id bigint;
    v_launch_id bigint;
BEGIN
    INSERT INTO users AS u (consumer_key, lti_user_id, slug, full_name, given_name, family_name, email)
    VALUES (p_consumer_key, p_lti_user_id, p_new_slug, p_full_name, p_given_name, p_family_name, p_email)
    ON CONFLICT (consumer_key, lti_user_id) DO UPDATE SET
        full_name = COALESCE(EXCLUDED.full_name, u.full_name),
        given_name = COALESCE(EXCLUDED.given_name, u.given_name),
        family_name = COALESCE(EXCLUDED.family_name, u.family_name),
        email = COALESCE(EXCLUDED.email, u.email),
        last_launch_at = now()
    RETURNING u.id, u.slug INTO v_user_id, v_slug;

    IF p_context_id IS NOT NULL THEN
        INSERT INTO courses AS c (consumer_key, context_id, title, label)
        VALUES (p_consumer_key, p_context_id, p_context_title, p_context_label)
        ON CONFLICT (consumer_key, context_id) DO UPDATE SET
            title = COALESCE(EXCLUDED.title, c.title),
            label = COALESCE(EXCLUDED.label, c.label),
            updated_at = now()
        RETURNING c.id INTO v_course_id;

        INSERT INTO enrolments AS e (user_id, course_id, role, lti_roles)
        VALUES (v_user_id, v_course_id, p_role, p_lti_roles)
        ON CONFLICT ON CONSTRAINT enrolments_pkey DO UPDATE SET
            role = EXCLUDED.role, lti_roles = EXCLUDED.lti_roles, updated_at = now();
    END IF;

    INSERT INTO launches (outcome, consumer_key, lti_user_id, context_id, resource_link_id, user_id, course_id, role,
                          lti_roles, custom, return_url, outcome_service_url, result_sourcedid, remote_addr, request_id)
    VALUES ('accepted', p_consumer_key, p_lti_user_id, p_context_id, p_resource_link_id, v_user_id, v_course_id, p_role,
            p_lti_roles, p_custom, p_return_url, p_outcome_service_url, p_result_sourcedid, p_remote_addr, p_request_id)
    RETURNING id INTO v_launch_id;

    IF p_previous_token_hash IS NOT NULL THEN
        DELETE FROM sessions WHERE token_hash = p_previous_token_hash;
    END IF;
    INSERT INTO sessions (token_hash, user_id, course_id, launch_id, role, expires_at)
    VALUES (p_token_hash, v_user_id, v_course_id, v_launch_id, p_role, now() + make_interval(secs => p_session_seconds));

    RETURN QUERY SELECT v_user_id, v_slug, v_course_id, v_launch_id;
END;
$$;

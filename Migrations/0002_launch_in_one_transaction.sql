-- Launches in one transaction and one round trip, without contention: the nonce is consumed by the
-- same function that records the accepted launch (one commit per launch), rows that did not change
-- are not rewritten (so the hundreds of students of one course starting together do not queue on
-- the course's row lock), and indexes nothing reads are gone. Replaces 0001's function.

DROP FUNCTION portal_accept_launch(text, text, text, text, text, text, text, text, text, text, text, text, text, jsonb,
                                   text, text, text, text, text, bytea, bytea, integer);

-- The purge scans the nonces (at most one timestamp window of launches) once a minute; an index on
-- expires_at would cost every launch a write.
DROP INDEX lti_nonces_expires_at;
-- Nothing looks sessions up by user yet.
DROP INDEX sessions_user;
-- Launches are appended in time order: a BRIN index serves time ranges at almost no write cost.
DROP INDEX launches_at;
CREATE INDEX launches_at ON launches USING brin (at);
-- The launches table records when each user launched; users are only rewritten when they change.
ALTER TABLE users DROP COLUMN last_launch_at;
ALTER TABLE users ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Accepts an authenticated launch: consumes its nonce (a replay returns replayed = true and writes
-- nothing), creates the user, course and enrolment or updates what changed, records the launch,
-- ends the browser's earlier session and opens a new one.
CREATE FUNCTION portal_accept_launch(
    p_consumer_key text,
    p_nonce text,
    p_nonce_expires_at timestamptz,
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
) RETURNS TABLE (replayed boolean, user_id bigint, user_slug text, course_id bigint, launch_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_user users%ROWTYPE;
    v_course courses%ROWTYPE;
    v_launch_id bigint;
BEGIN
    -- The nonce first: a replay writes nothing. An expired row the purge has not reached is reused.
    INSERT INTO lti_nonces AS n (consumer_key, nonce, expires_at) VALUES (p_consumer_key, p_nonce, p_nonce_expires_at)
    ON CONFLICT (consumer_key, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE n.expires_at < now();
    IF NOT FOUND THEN
        RETURN QUERY SELECT true, NULL::bigint, NULL::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    SELECT * INTO v_user FROM users u WHERE u.consumer_key = p_consumer_key AND u.lti_user_id = p_lti_user_id;
    IF NOT FOUND THEN
        INSERT INTO users AS u (consumer_key, lti_user_id, slug, full_name, given_name, family_name, email)
        VALUES (p_consumer_key, p_lti_user_id, p_new_slug, p_full_name, p_given_name, p_family_name, p_email)
        ON CONFLICT (consumer_key, lti_user_id) DO NOTHING
        RETURNING * INTO v_user;
        IF v_user.id IS NULL THEN  -- a simultaneous first launch created the user
            SELECT * INTO v_user FROM users u WHERE u.consumer_key = p_consumer_key AND u.lti_user_id = p_lti_user_id;
        END IF;
    ELSIF (p_full_name IS NOT NULL AND p_full_name IS DISTINCT FROM v_user.full_name)
       OR (p_given_name IS NOT NULL AND p_given_name IS DISTINCT FROM v_user.given_name)
       OR (p_family_name IS NOT NULL AND p_family_name IS DISTINCT FROM v_user.family_name)
       OR (p_email IS NOT NULL AND p_email IS DISTINCT FROM v_user.email) THEN
        UPDATE users u SET full_name = COALESCE(p_full_name, u.full_name), given_name = COALESCE(p_given_name, u.given_name),
                           family_name = COALESCE(p_family_name, u.family_name), email = COALESCE(p_email, u.email), updated_at = now()
        WHERE u.id = v_user.id;
    END IF;

    IF p_context_id IS NOT NULL THEN
        SELECT * INTO v_course FROM courses c WHERE c.consumer_key = p_consumer_key AND c.context_id = p_context_id;
        IF NOT FOUND THEN
            INSERT INTO courses AS c (consumer_key, context_id, title, label)
            VALUES (p_consumer_key, p_context_id, p_context_title, p_context_label)
            ON CONFLICT (consumer_key, context_id) DO NOTHING
            RETURNING * INTO v_course;
            IF v_course.id IS NULL THEN  -- a simultaneous launch created the course
                SELECT * INTO v_course FROM courses c WHERE c.consumer_key = p_consumer_key AND c.context_id = p_context_id;
            END IF;
        ELSIF (p_context_title IS NOT NULL AND p_context_title IS DISTINCT FROM v_course.title)
           OR (p_context_label IS NOT NULL AND p_context_label IS DISTINCT FROM v_course.label) THEN
            UPDATE courses c SET title = COALESCE(p_context_title, c.title), label = COALESCE(p_context_label, c.label), updated_at = now()
            WHERE c.id = v_course.id;
        END IF;

        INSERT INTO enrolments AS e (user_id, course_id, role, lti_roles)
        VALUES (v_user.id, v_course.id, p_role, p_lti_roles)
        ON CONFLICT ON CONSTRAINT enrolments_pkey DO UPDATE SET role = EXCLUDED.role, lti_roles = EXCLUDED.lti_roles, updated_at = now()
        WHERE e.role IS DISTINCT FROM EXCLUDED.role OR e.lti_roles IS DISTINCT FROM EXCLUDED.lti_roles;
    END IF;

    INSERT INTO launches (outcome, consumer_key, lti_user_id, context_id, resource_link_id, user_id, course_id, role,
                          lti_roles, custom, return_url, outcome_service_url, result_sourcedid, remote_addr, request_id)
    VALUES ('accepted', p_consumer_key, p_lti_user_id, p_context_id, p_resource_link_id, v_user.id, v_course.id, p_role,
            p_lti_roles, p_custom, p_return_url, p_outcome_service_url, p_result_sourcedid, p_remote_addr, p_request_id)
    RETURNING id INTO v_launch_id;

    IF p_previous_token_hash IS NOT NULL THEN
        DELETE FROM sessions s WHERE s.token_hash = p_previous_token_hash;
    END IF;
    INSERT INTO sessions (token_hash, user_id, course_id, launch_id, role, expires_at)
    VALUES (p_token_hash, v_user.id, v_course.id, v_launch_id, p_role, now() + make_interval(secs => p_session_seconds));

    RETURN QUERY SELECT false, v_user.id, v_user.slug, v_course.id, v_launch_id;
END;
$$;

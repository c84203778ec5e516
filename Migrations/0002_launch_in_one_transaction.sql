-- Launches in one transaction and one round trip: the nonce is consumed by the same function that
-- records the accepted launch, so a launch costs one commit. Replaces 0001's function.

DROP FUNCTION portal_accept_launch(text, text, text, text, text, text, text, text, text, text, text, text, text, jsonb,
                                   text, text, text, text, text, bytea, bytea, integer);

-- Accepts a verified launch: consumes its nonce (a replay returns replayed = true and writes
-- nothing), upserts the user, the course and the enrolment, records the launch, ends the browser's
-- earlier session and opens a new one.
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
    v_user_id bigint;
    v_slug text;
    v_course_id bigint;
    v_launch_id bigint;
BEGIN
    -- The nonce first: a replay writes nothing.
    INSERT INTO lti_nonces AS n (consumer_key, nonce, expires_at) VALUES (p_consumer_key, p_nonce, p_nonce_expires_at)
    ON CONFLICT (consumer_key, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE n.expires_at < now();
    IF NOT FOUND THEN
        RETURN QUERY SELECT true, NULL::bigint, NULL::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

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

    RETURN QUERY SELECT false, v_user_id, v_slug, v_course_id, v_launch_id;
END;
$$;

-- Refused launches cost whoever sends them nothing, so what they may write is bounded: every field
-- taken from a refused launch is cut to 256 characters (by the portal, before it is sent here) and
-- the columns cut are named in launches.truncated_fields; and only so many refusals a minute are
-- recorded row by row, per client and in total, beyond which they are only counted.

-- The columns of a launch record whose values were cut (e.g. {lti_user_id,return_url}).
ALTER TABLE launches ADD COLUMN truncated_fields text[] NOT NULL DEFAULT '{}';

-- Refusals per minute and client address (an IPv6 client by its /64 network), and per minute in
-- total under client_addr '*': how many there were and how many of them have a row in launches.
-- A row where every refusal was recorded says nothing the launches rows do not, and is purged once
-- its minute is over; one where refused > recorded is the record of the refusals not recorded.
-- Every refusal updates its rows, so they leave room for HOT updates.
CREATE TABLE launch_refusal_counts (
    minute timestamptz NOT NULL,
    client_addr text NOT NULL,
    refused integer NOT NULL,
    recorded integer NOT NULL,
    PRIMARY KEY (minute, client_addr)
) WITH (fillfactor = 50);

-- Counts a refused launch and records it in launches unless its client, or everybody together,
-- already has p_per_client (p_per_minute) refusals recorded this minute. The counting upserts lock
-- the client row and then the total row, always in that order, until the transaction ends, so
-- portals on any number of replicas never record more than the limits between them.
-- Returns 'recorded', 'client_limit' or 'total_limit' (the first refusal of the minute not
-- recorded, for that reason), or 'counted' (a later one).
CREATE FUNCTION portal_refuse_launch(
    p_per_client integer,
    p_per_minute integer,
    p_client_addr text,
    p_reason text,
    p_message text,
    p_consumer_key text,
    p_lti_user_id text,
    p_context_id text,
    p_resource_link_id text,
    p_lti_roles text,
    p_return_url text,
    p_remote_addr text,
    p_request_id text,
    p_truncated_fields text[]
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_minute timestamptz := date_trunc('minute', now());
    v_client_refused integer;
    v_client_recorded integer;
    v_total_refused integer;
    v_total_recorded integer;
BEGIN
    INSERT INTO launch_refusal_counts AS c (minute, client_addr, refused, recorded) VALUES (v_minute, p_client_addr, 1, 0)
    ON CONFLICT (minute, client_addr) DO UPDATE SET refused = c.refused + 1
    RETURNING c.refused, c.recorded INTO v_client_refused, v_client_recorded;
    INSERT INTO launch_refusal_counts AS c (minute, client_addr, refused, recorded) VALUES (v_minute, '*', 1, 0)
    ON CONFLICT (minute, client_addr) DO UPDATE SET refused = c.refused + 1
    RETURNING c.refused, c.recorded INTO v_total_refused, v_total_recorded;

    IF v_client_recorded >= p_per_client THEN
        RETURN CASE WHEN v_client_refused = v_client_recorded + 1 THEN 'client_limit' ELSE 'counted' END;
    END IF;
    IF v_total_recorded >= p_per_minute THEN
        RETURN CASE WHEN v_total_refused = v_total_recorded + 1 THEN 'total_limit' ELSE 'counted' END;
    END IF;

    INSERT INTO launches (outcome, reason, message, consumer_key, lti_user_id, context_id, resource_link_id, lti_roles,
                          return_url, remote_addr, request_id, truncated_fields)
    VALUES ('refused', p_reason, p_message, p_consumer_key, p_lti_user_id, p_context_id, p_resource_link_id, p_lti_roles,
            p_return_url, p_remote_addr, p_request_id, p_truncated_fields);
    UPDATE launch_refusal_counts c SET recorded = c.recorded + 1 WHERE c.minute = v_minute AND c.client_addr IN (p_client_addr, '*');
    RETURN 'recorded';
END;
$$;

{#- The bronze customer rows customer_trusted does not keep, each with its reason (customer_classified). -#}
select
    email,
    customer_name,
    phone,
    birth_day,
    serial_number,
    registration_date_ms,
    last_update_date_ms,
    share_with_research_as_of_date_ms,
    share_with_public_as_of_date_ms,
    share_with_friends_as_of_date_ms,
    registered_at,
    last_updated_at,
    research_consent_at,
    ingested_at,
    source_file,
    batch_id,
    event_date,
    rejection_reason,
    consent_policy
from {{ ref('customer_classified') }}
where rejection_reason is not null

{#- The bronze accelerometer rows accelerometer_trusted does not keep, each with its reason. -#}
select
    user_email,
    timestamp_ms,
    reading_at,
    x,
    y,
    z,
    ingested_at,
    source_file,
    batch_id,
    event_date,
    rejection_reason,
    consent_policy
from {{ ref('accelerometer_classified') }}
where rejection_reason is not null

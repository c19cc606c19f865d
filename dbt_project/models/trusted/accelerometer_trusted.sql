{#-
    Accelerometer readings of the customers in customer_trusted, within their consent (the rules are
    accelerometer_classified's; the readings not kept are in accelerometer_rejected with the reason).
-#}
select
    user_email,
    timestamp_ms,
    reading_at,
    x,
    y,
    z,
    ingested_at,
    source_file,
    consent_policy
from {{ ref('accelerometer_classified') }}
where rejection_reason is null

{#-
    Step-trainer readings of the devices of curated customers, within their owners' consent (the rules are
    step_trainer_classified's; the readings not kept are in step_trainer_rejected with the reason).
-#}
select
    serial_number,
    sensor_reading_time_ms,
    reading_at,
    distance_from_object,
    ingested_at,
    source_file,
    consent_policy
from {{ ref('step_trainer_classified') }}
where rejection_reason is null

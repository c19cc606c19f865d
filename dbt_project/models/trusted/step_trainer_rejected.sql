{#- The bronze step trainer rows step_trainer_trusted does not keep, each with its reason (step_trainer_classified). -#}
select
    serial_number,
    sensor_reading_time_ms,
    reading_at,
    distance_from_object,
    ingested_at,
    source_file,
    batch_id,
    event_date,
    rejection_reason,
    consent_policy
from {{ ref('step_trainer_classified') }}
where rejection_reason is not null

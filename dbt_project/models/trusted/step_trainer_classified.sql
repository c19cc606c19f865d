{#-
    Every bronze step-trainer reading with the trusted zone's verdict: rejection_reason is null for the
    readings step_trainer_trusted keeps, else why not. Kept: readings of the devices of curated customers
    (trusted customers with at least one accelerometer_trusted reading, the rule of customers_curated).
    A duplicate is an identical record: of several copies of one (serial_number, sensor_reading_time_ms,
    distance_from_object) the latest ingest is kept; readings of one device in the same millisecond with
    other distances are all kept. since_consent keeps a reading when a curated owner of the device had
    consented by then (the earliest consent of its curated owners); any_time keeps every reading of their
    devices. A serial number registered by several customers: a reading is kept once if any of them
    qualifies; machine_learning_curated then pairs it with each owner's own accelerometer readings.
-#}
with

step_trainer_readings as (

    select * from {{ ref('stg_bronze__step_trainer') }}

),

trusted_customers as (

    select * from {{ ref('customer_trusted') }}

),

trusted_accelerometer as (

    select * from {{ ref('accelerometer_trusted') }}

),

curated_devices as (

    select
        customers.serial_number,
        min(customers.share_with_research_as_of_date_ms) as earliest_consent_ms
    from trusted_customers as customers
    where
        customers.serial_number is not null
        and exists (
            select 1
            from trusted_accelerometer as accelerometer
            where accelerometer.user_email = customers.email
        )
    group by customers.serial_number

),

ranked_copies as (

    select
        *,
        row_number() over (
            partition by serial_number, sensor_reading_time_ms, distance_from_object
            order by ingested_at desc, source_file desc, batch_id desc
        ) as copy_rank
    from step_trainer_readings

),

final as (

    select
        readings.serial_number,
        readings.sensor_reading_time_ms,
        readings.reading_at,
        readings.distance_from_object,
        readings.ingested_at,
        readings.source_file,
        readings.batch_id,
        readings.event_date,
        case
            when readings.serial_number is null or readings.sensor_reading_time_ms is null then 'missing_key'
            when readings.copy_rank > 1 then 'duplicate_copy'
            when devices.serial_number is null then 'device_not_curated'
            when not (
                    {{ reading_within_consent('readings.sensor_reading_time_ms', 'devices.earliest_consent_ms') }}
                ) then 'before_consent'
        end as rejection_reason,
        {{ consent_policy_column() }}
    from ranked_copies as readings
    left join curated_devices as devices
        on readings.serial_number = devices.serial_number

)

select * from final

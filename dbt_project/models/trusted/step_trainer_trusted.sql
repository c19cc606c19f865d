{#-
    Step-trainer readings of the devices of curated customers (trusted customers with at least one
    accelerometer_trusted reading, the rule of customers_curated). A duplicate is an identical record: of
    several copies of one (serial_number, sensor_reading_time_ms, distance_from_object) the latest ingest
    wins; readings of one device in the same millisecond with other distances are all kept. since_consent keeps a reading when
    a curated owner of the device had consented by then; any_time keeps every reading of their devices.
    A serial number registered by several customers: a reading is kept once if any of them qualifies;
    machine_learning_curated then pairs it with each owner's own accelerometer readings at that time.
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

curated_device_owners as (

    select
        customers.serial_number,
        customers.share_with_research_as_of_date_ms
    from trusted_customers as customers
    where
        customers.serial_number is not null
        and exists (
            select 1
            from trusted_accelerometer as accelerometer
            where accelerometer.user_email = customers.email
        )

),

ranked_copies as (

    select
        *,
        row_number() over (
            partition by serial_number, sensor_reading_time_ms, distance_from_object
            order by ingested_at desc, source_file desc, batch_id desc
        ) as copy_rank
    from step_trainer_readings
    where serial_number is not null and sensor_reading_time_ms is not null

),

final as (

    select
        readings.serial_number,
        readings.sensor_reading_time_ms,
        readings.reading_at,
        readings.distance_from_object,
        readings.ingested_at,
        readings.source_file,
        {{ consent_policy_column() }}
    from ranked_copies as readings
    where
        readings.copy_rank = 1
        and exists (
            select 1
            from curated_device_owners as owners
            where
                owners.serial_number = readings.serial_number
                and {{ reading_within_consent(
                    'readings.sensor_reading_time_ms', 'owners.share_with_research_as_of_date_ms'
                ) }}
        )

)

select * from final

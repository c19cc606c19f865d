{#-
    The training data: each step_trainer_trusted reading joined with every accelerometer_trusted reading
    of the same customer at the same time (sensor_reading_time_ms = timestamp_ms): a phone that sent six
    readings in that millisecond gives six pairs. The join goes through the
    device's owner (customer_trusted.serial_number) to that owner's own accelerometer readings: customer
    and time, never time alone, because several customers have readings at the same timestamps.
-#}
with

trusted_step_trainer as (

    select * from {{ ref('step_trainer_trusted') }}

),

trusted_accelerometer as (

    select * from {{ ref('accelerometer_trusted') }}

),

trusted_customers as (

    select * from {{ ref('customer_trusted') }}

),

device_owners as (

    select
        email,
        serial_number
    from trusted_customers
    where serial_number is not null

),

final as (

    select
        {{ customer_key('accelerometer.user_email') }} as customer_key,
        step_trainer.sensor_reading_time_ms,
        accelerometer.timestamp_ms,
        step_trainer.reading_at,
        step_trainer.distance_from_object,
        accelerometer.x,
        accelerometer.y,
        accelerometer.z,
        {{ consent_policy_column() }}
    from trusted_step_trainer as step_trainer
    inner join device_owners as owners
        on step_trainer.serial_number = owners.serial_number
    inner join trusted_accelerometer as accelerometer
        on
            owners.email = accelerometer.user_email
            and step_trainer.sensor_reading_time_ms = accelerometer.timestamp_ms

)

select * from final

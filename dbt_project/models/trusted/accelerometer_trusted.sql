{#-
    Accelerometer readings of the customers in customer_trusted. A duplicate is an identical record: of
    several copies of one (user_email, timestamp_ms, x, y, z) the latest ingest wins, while readings of
    one customer in the same millisecond with other values (real phones send up to six) are all kept. since_consent keeps readings taken at or after the customer's
    research consent; any_time keeps all of them.
-#}
with

accelerometer_readings as (

    select * from {{ ref('stg_bronze__accelerometer') }}

),

trusted_customers as (

    select * from {{ ref('customer_trusted') }}

),

ranked_copies as (

    select
        *,
        row_number() over (
            partition by user_email, timestamp_ms, x, y, z
            order by ingested_at desc, source_file desc, batch_id desc
        ) as copy_rank
    from accelerometer_readings
    where user_email is not null and timestamp_ms is not null

),

final as (

    select
        readings.user_email,
        readings.timestamp_ms,
        readings.reading_at,
        readings.x,
        readings.y,
        readings.z,
        readings.ingested_at,
        readings.source_file,
        {{ consent_policy_column() }}
    from ranked_copies as readings
    inner join trusted_customers as customers
        on readings.user_email = customers.email
    where
        readings.copy_rank = 1
        and {{ reading_within_consent('readings.timestamp_ms', 'customers.share_with_research_as_of_date_ms') }}

)

select * from final

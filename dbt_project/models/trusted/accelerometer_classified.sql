{#-
    Every bronze accelerometer reading with the trusted zone's verdict: rejection_reason is null for the
    readings accelerometer_trusted keeps, else why not. A duplicate is an identical record: of several
    copies of one (user_email, timestamp_ms, x, y, z) the latest ingest is kept and the others are
    duplicate_copy, while readings of one customer in the same millisecond with other values (real phones
    send up to six) are all kept. since_consent keeps readings taken at or after the customer's research
    consent; any_time keeps all of them. accelerometer_trusted and accelerometer_rejected are the two
    halves of this table.
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
        readings.batch_id,
        readings.event_date,
        case
            when readings.user_email is null or readings.timestamp_ms is null then 'missing_key'
            when readings.copy_rank > 1 then 'duplicate_copy'
            when customers.email is null then 'customer_not_trusted'
            when not (
                    {{ reading_within_consent('readings.timestamp_ms', 'customers.share_with_research_as_of_date_ms') }}
                ) then 'before_consent'
        end as rejection_reason,
        {{ consent_policy_column() }}
    from ranked_copies as readings
    left join trusted_customers as customers
        on readings.user_email = customers.email

)

select * from final

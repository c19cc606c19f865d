with

{{ catalogue_intervals('device_type', ['device_type']) }}

final as (

    select
        device_type,
        cast(reporting_interval_s as integer) as reporting_interval_s,
        cast(silence_after_s as integer) as silence_after_s,
        description,
        valid_from,
        valid_to,
        valid_to = {{ catalogue_end_of_time() }} as is_current,
        catalogue_version,
        recorded_at,
        imported_from

    from device_type_intervals

)

select * from final

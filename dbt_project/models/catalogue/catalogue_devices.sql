with

{{ catalogue_intervals('device', ['device_id']) }}

final as (

    select
        device_id,
        device_type,
        site_id,
        installed_at,
        retired_at,
        valid_from,
        valid_to,
        valid_to = {{ catalogue_end_of_time() }} as is_current,
        catalogue_version,
        recorded_at,
        imported_from

    from device_intervals

)

select * from final

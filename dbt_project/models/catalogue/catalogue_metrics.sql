with

{{ catalogue_intervals('metric', ['device_type', "coalesce(device_id, '')", 'metric']) }}

final as (

    select
        device_type,
        device_id,
        metric,
        unit,
        valid_min,
        valid_max,
        alert_min,
        alert_max,
        max_jump,
        valid_from,
        valid_to,
        valid_to = {{ catalogue_end_of_time() }} as is_current,
        catalogue_version,
        recorded_at,
        imported_from

    from metric_intervals

)

select * from final

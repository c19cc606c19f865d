with

source as (

    {{ catalogue_changes() }}

),

renamed as (

    select
        cast(kind as varchar) as kind,
        cast(version as bigint) as catalogue_version,
        cast(recorded_at as timestamp) as recorded_at,
        cast(valid_from as timestamp) as valid_from,
        cast(source as varchar) as imported_from,
        cast(device_type as varchar) as device_type,
        cast(reporting_interval_s as double) as reporting_interval_s,
        cast(silence_after_s as double) as silence_after_s,
        cast(description as varchar) as description,
        cast(metric as varchar) as metric,
        cast(device_id as varchar) as device_id,
        cast(unit as varchar) as unit,
        cast(valid_min as double) as valid_min,
        cast(valid_max as double) as valid_max,
        cast(alert_min as double) as alert_min,
        cast(alert_max as double) as alert_max,
        cast(max_jump as double) as max_jump,
        cast(site_id as varchar) as site_id,
        cast(installed_at as timestamp) as installed_at,
        cast(retired_at as timestamp) as retired_at

    from source

)

select * from renamed

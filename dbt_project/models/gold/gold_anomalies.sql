{{ config(**replaceable_units_config(unique_key=['device_id', 'event_date'], row_id='anomaly_id')) }}

{#-
    Shape of the computation, for speed: readings stay as they are (one row per reading, a column per
    metric) through a single window pass that brings each reading's number and predecessor alongside; the
    z-score baseline comes from ten-minute bucket sums (a GROUP BY joined back, no sliding window). Only
    notable readings (few) are turned into long (metric, kind) points; flatlines are runs of repeated
    values among them, and points of consecutive readings are grouped into windows.

    The rejected out_of_range readings are read from silver_classified_readings, the table behind the
    silver_rejected_readings view: so this model, the longest of gold, is ready to run as soon as
    silver_readings is, with the other gold models, and dbt starts it first (ready nodes start in name
    order); waiting for the second view, it used to start last and run alone at the end.
-#}
{%- set backfill = backfill_range() if is_incremental() else none %}
{%- set first_new_date = new_rows_first_date([ref('silver_classified_readings')]) %}
{%- set metrics = var('metrics') %}
{%- set bucket_minutes = var('anomaly_zscore_window_minutes') %}
{#- How far a reading's z-score neighbourhood reaches: its bucket and the next one on either side. #}
{%- set reach_minutes = 2 * bucket_minutes %}
{%- set flat_readings = var('anomaly_flatline_min_readings') %}
{%- set flat_minimum_s = var('anomaly_flatline_min_minutes') * 60.0 %}
{#- An incremental build computes windows again only around the new readings (see the late-data rule). #}
{%- set around_new_readings = is_incremental() and not backfill %}
{#- The margin of readings read before and after what is computed again: z-score neighbourhoods and the
    flatline runs shorter than the minimum duration (whole seconds). #}
{%- set flat_seconds = flat_minimum_s | round(0, 'ceil') | int %}
{%- set margin_s = reach_minutes * 60 + flat_seconds %}
{#- Point kinds: scored per reading and metric; `repeat` (the value of the previous reading again) builds flatlines. #}
{%- set point_kinds = ['threshold_breach', 'zscore_outlier', 'rate_of_change', 'repeat'] %}
{%- set device_series = '(partition by device_id order by event_at, seq)' %}
{%- set metric_series = '(partition by device_id, metric order by event_at, seq)' %}
{%- set point_series = '(partition by device_id, metric, anomaly_kind order by event_at, seq)' %}

with

silver_readings as (

    select * from {{ ref('silver_readings') }}

),

metric_limits as (

    select * from {{ ref('metric_limits') }}

),

device_types as (

    select * from {{ ref('device_types') }}

),

limits_by_device_type as (

    select
        device_types.device_type,
        device_types.reporting_interval_s,
        {%- for metric in metrics %}
        {%- for limit in ['valid_min', 'valid_max', 'alert_min', 'alert_max', 'max_jump'] %}
        max(case when metric_limits.metric = '{{ metric }}' then metric_limits.{{ limit }} end)
            as {{ metric }}__{{ limit }},
        {%- endfor %}
        {%- endfor %}
        device_types.silence_after_s
    from device_types
    left join metric_limits
        on device_types.device_type = metric_limits.device_type
    group by device_types.device_type, device_types.reporting_interval_s, device_types.silence_after_s

),

{% if backfill -%}

-- A backfill: the windows of every device-day of the range, from the readings of the range and of one day
-- on each side (lags, gaps and z-score neighbourhoods reach across midnight), plus each device's last
-- reading before that (the start of a data_gap ending in the range).
previous_readings as (

    select
        silver_readings.device_id,
        max(silver_readings.event_at) as event_at
    from silver_readings
    where
        silver_readings.event_date
        < cast({{ dbt.dateadd('day', -1, "cast('" ~ backfill['from'] ~ "' as date)") }} as date)
    group by silver_readings.device_id

),

readings as (

    select
        silver_readings.*,
        false as is_range_predecessor
    from silver_readings
    where {{ in_backfill_range('silver_readings.event_date', backfill, days_before=1, days_after=1) }}

    union all

    select
        silver_readings.*,
        false as is_range_predecessor
    from silver_readings
    inner join previous_readings
        on
            silver_readings.device_id = previous_readings.device_id
            and silver_readings.event_at = previous_readings.event_at

),

rejected_to_scan as (

    select rejected_readings.*
    from {{ ref('silver_classified_readings') }} as rejected_readings
    where
        {{ in_backfill_range('rejected_readings.event_date', backfill) }}
        and rejected_readings.rejection_reason = 'out_of_range'

),

{%- elif is_incremental() -%}

{{ gold_rebuild_window() }}

-- The late-data rule. A reading ingested since the last build (new, late or re-published) changes the
-- scores of the readings of its ten-minute bucket and of the two next to it (their z-score
-- neighbourhood), and the readings just after it: their predecessor (jump, repeat, gap) and the flatline
-- runs they end, at most anomaly_flatline_min_readings readings on. So, per device, each run of such
-- buckets (an island) becomes an interval: from the reading before it (or the start of its day) to the
-- margin after it when that holds enough readings, else to the device's last reading. The windows that
-- meet an interval are computed again, the others of the same device-days are kept as built: the work
-- follows the new readings, not the size of their days. Computing a window again needs all of its readings
-- and those around them: each interval is widened to the windows already built that meet it (a long
-- flatline, a breach), then by the margin (z-score neighbourhoods, flatline runs shorter than
-- anomaly_flatline_min_minutes), and to the start of the day when fewer readings than a flatline needs lie
-- in the margin before it. silver_readings is read directly by each CTE here, not through the import CTE:
-- DuckDB materializes a CTE that several others read, and materializing all of silver would cost more
-- than the rest of the run (the rejected readings are few).
new_readings as (

    select
        silver_readings.device_id,
        silver_readings.event_date,
        silver_readings.event_at,
        true as is_accepted
    from {{ ref('silver_readings') }} as silver_readings
    cross join rebuild_window
    where
        silver_readings.event_date >= rebuild_window.floor_date
        and silver_readings.ingested_at >= rebuild_window.since_ingested_at

    union all

    select
        rejected_readings.device_id,
        rejected_readings.event_date,
        rejected_readings.event_at,
        false as is_accepted
    from {{ ref('silver_classified_readings') }} as rejected_readings
    cross join rebuild_window
    where
        rejected_readings.rejection_reason = 'out_of_range'
        and rejected_readings.event_date >= rebuild_window.floor_date
        and rejected_readings.ingested_at >= rebuild_window.since_ingested_at

),

new_buckets as (

    select distinct
        device_id,
        {{ bucket_number('event_at') }} as bucket_number
    from new_readings
    where is_accepted

),

affected_buckets as (

    {%- for shift in [-1, 0, 1] %}
    select
        device_id,
        bucket_number + {{ shift }} as bucket_number
    from new_buckets
    {{ 'union distinct' if not loop.last }}
    {%- endfor %}

),

affected_islands as (

    select
        device_id,
        {{ bucket_start('min(bucket_number)') }} as island_start,
        {{ bucket_start('max(bucket_number) + 1') }} as island_end
    from (
        select
            device_id,
            bucket_number,
            bucket_number - row_number() over (partition by device_id order by bucket_number) as island_number
        from affected_buckets
    ) as numbered_buckets
    group by device_id, island_number

),

-- Around each island: the reading just before it, the readings within the margin on either side, and the
-- device's last reading.
island_surroundings as (

    select
        affected_islands.device_id,
        affected_islands.island_start,
        affected_islands.island_end,
        max(
            case when silver_readings.event_at < affected_islands.island_start then silver_readings.event_at end
        ) as previous_event_at,
        sum(
            case
                when
                    silver_readings.event_at < affected_islands.island_start
                    and silver_readings.event_at
                    >= {{ dbt.dateadd('second', -1 * margin_s, 'affected_islands.island_start') }}
                    then 1
                else 0
            end
        ) as readings_before,
        sum(
            case
                when
                    silver_readings.event_at >= affected_islands.island_end
                    and silver_readings.event_at < {{ dbt.dateadd('second', margin_s, 'affected_islands.island_end') }}
                    then 1
                else 0
            end
        ) as readings_after,
        max(silver_readings.event_at) as last_event_at
    from affected_islands
    inner join {{ ref('silver_readings') }} as silver_readings
        on
            affected_islands.device_id = silver_readings.device_id
            and silver_readings.event_at
            >= {{ dbt.dateadd('second', -1 * margin_s, dbt.date_trunc('day', 'affected_islands.island_start')) }}
    {%- if first_new_date %}
    -- A literal DuckDB prunes the scan with (see new_rows_first_date): an island starts at most one bucket
    -- before its first new reading, so no island's day starts before the day before the first new reading.
    where silver_readings.event_date >= cast({{ dbt.dateadd('day', -2, first_new_date) }} as date)
    {%- endif %}
    group by affected_islands.device_id, affected_islands.island_start, affected_islands.island_end

),

island_intervals as (

    select
        device_id,
        island_start,
        case
            when previous_event_at >= {{ dbt.date_trunc('day', 'island_start') }} then previous_event_at
            else {{ dbt.date_trunc('day', 'island_start') }}
        end as interval_start,
        case
            when
                readings_after >= {{ flat_readings }}
                or last_event_at < {{ dbt.dateadd('second', margin_s, 'island_end') }}
                then {{ dbt.dateadd('second', margin_s, 'island_end') }}
            else last_event_at
        end as interval_end,
        readings_before >= {{ flat_readings }} as has_readings_before
    from island_surroundings

),

-- The windows already built that meet an interval: computed again, not kept as built.
changed_windows as (

    select
        island_intervals.device_id,
        island_intervals.island_start,
        built_windows.event_date,
        built_windows.anomaly_kind,
        built_windows.started_at,
        built_windows.ended_at
    from {{ this }} as built_windows
    inner join island_intervals
        on
            built_windows.device_id = island_intervals.device_id
            and built_windows.ended_at >= island_intervals.interval_start
            and built_windows.started_at <= island_intervals.interval_end
    where built_windows.anomaly_kind <> 'out_of_range'

),

-- Each interval with the windows that meet it (the start of a data_gap is the reading before a silence,
-- which `readings` brings anyway); the readings to compute from reach the margin further.
island_cores as (

    select
        island_intervals.device_id,
        island_intervals.island_start,
        island_intervals.has_readings_before,
        case
            when min(case when changed_windows.anomaly_kind <> 'data_gap' then changed_windows.started_at end)
                < island_intervals.interval_start
                then min(case when changed_windows.anomaly_kind <> 'data_gap' then changed_windows.started_at end)
            else island_intervals.interval_start
        end as core_start,
        case
            when max(changed_windows.ended_at) > island_intervals.interval_end then max(changed_windows.ended_at)
            else island_intervals.interval_end
        end as core_end
    from island_intervals
    left join changed_windows
        on
            island_intervals.device_id = changed_windows.device_id
            and island_intervals.island_start = changed_windows.island_start
    group by
        island_intervals.device_id,
        island_intervals.island_start,
        island_intervals.interval_start,
        island_intervals.interval_end,
        island_intervals.has_readings_before

),

island_ranges as (

    select
        device_id,
        case
            when has_readings_before then {{ dbt.dateadd('second', -1 * margin_s, 'core_start') }}
            else {{ dbt.dateadd('minute', -1 * reach_minutes, dbt.date_trunc('day', 'core_start')) }}
        end as range_start,
        {{ dbt.dateadd('minute', reach_minutes, 'core_end') }} as range_end
    from island_cores

),

-- Overlapping ranges of a device merged, so that no reading is read twice.
context_ranges as (

    select
        device_id,
        min(range_start) as range_start,
        max(range_end) as range_end
    from (
        select
            device_id,
            range_start,
            range_end,
            sum(case when range_start <= reached_before then 0 else 1 end) over (
                partition by device_id
                order by range_start, range_end
                rows between unbounded preceding and current row
            ) as range_number
        from (
            select
                device_id,
                range_start,
                range_end,
                max(range_end) over (
                    partition by device_id
                    order by range_start, range_end
                    rows between unbounded preceding and 1 preceding
                ) as reached_before
            from island_ranges
        ) as ordered_ranges
    ) as numbered_ranges
    group by device_id, range_number

),

-- ... and the reading just before each range (the predecessor of its first reading), when no other
-- range holds it. Its own predecessor is not read: `is_range_predecessor` keeps its lags empty.
previous_readings as (

    select
        context_ranges.device_id,
        max(silver_readings.event_at) as event_at
    from {{ ref('silver_readings') }} as silver_readings
    inner join context_ranges
        on silver_readings.device_id = context_ranges.device_id
    cross join rebuild_window
    where
        silver_readings.event_at < context_ranges.range_start
        and silver_readings.event_date >= rebuild_window.floor_date
    group by context_ranges.device_id, context_ranges.range_start

),

readings as (

    select
        silver_readings.*,
        false as is_range_predecessor
    from {{ ref('silver_readings') }} as silver_readings
    inner join context_ranges
        on
            silver_readings.device_id = context_ranges.device_id
            and silver_readings.event_at >= context_ranges.range_start
            and silver_readings.event_at < context_ranges.range_end
    {%- if first_new_date %}
    -- The literal hint again: a range starts at most the margin before the day of its island.
    where silver_readings.event_date >= cast({{ dbt.dateadd('day', -2, first_new_date) }} as date)
    {%- endif %}

    union all

    select
        silver_readings.*,
        true as is_range_predecessor
    from {{ ref('silver_readings') }} as silver_readings
    inner join previous_readings
        on
            silver_readings.device_id = previous_readings.device_id
            and silver_readings.event_at = previous_readings.event_at
    where
        not exists (
            select 1 from context_ranges
            where
                context_ranges.device_id = silver_readings.device_id
                and silver_readings.event_at >= context_ranges.range_start
                and silver_readings.event_at < context_ranges.range_end
        )

),

{%- else -%}

readings as (

    select
        *,
        false as is_range_predecessor
    from silver_readings

),

rejected_to_scan as (

    select * from {{ ref('silver_classified_readings') }}
    where rejection_reason = 'out_of_range'

),

{%- endif %}

{#- The predecessor's value of a column (`{column}`); none for the reading before a range of readings (see
    the late-data rule), whose own predecessor is not read. #}
{%- set previous_value = 'lag({column}) over ' ~ device_series %}
{%- if around_new_readings %}
{%- set previous_value = 'case when not is_range_predecessor then ' ~ previous_value ~ ' end' %}
{%- endif %}

-- The one window pass, over the readings as they are (a column per metric, so one row per reading):
-- each reading's number in its device's series, its neighbours' times and its predecessor's values.
sequenced_readings as (

    select
        device_id,
        device_type,
        site_id,
        event_date,
        event_at,
        seq,
        ingested_at,
        {%- for metric in metrics %}
        {{ metric }},
        {{ previous_value | replace('{column}', metric) }} as {{ metric }}__previous,
        {%- endfor %}
        row_number() over {{ device_series }} as reading_number,
        {{ previous_value | replace('{column}', 'event_at') }} as previous_event_at,
        {{ previous_value | replace('{column}', 'event_date') }} as previous_event_date
    from readings

),

-- zscore_outlier baseline: per device, sums of each metric over ten-minute buckets; a reading's
-- neighbourhood is its bucket and the two next to it, the reading itself left out.
bucket_sums as (

    select
        device_id,
        device_type,
        {{ bucket_number('event_at') }} as bucket_number,
        {%- for metric in metrics %}
        count({{ metric }}) as {{ metric }}__n,
        sum({{ metric }}) as {{ metric }}__sum,
        sum({{ metric }} * {{ metric }}) as {{ metric }}__sum_sq,
        {%- endfor %}
        count(*) as reading_count
    from readings
    group by device_id, device_type, {{ bucket_number('event_at') }}

),

neighbourhood_sums as (

    select
        device_id,
        device_type,
        bucket_number,
        {%- for metric in metrics %}
        sum({{ metric }}__n) as {{ metric }}__n,
        sum({{ metric }}__sum) as {{ metric }}__sum,
        sum({{ metric }}__sum_sq) as {{ metric }}__sum_sq,
        {%- endfor %}
        sum(reading_count) as reading_count
    from (
        {%- for shift in [-1, 0, 1] %}
        select
            device_id,
            device_type,
            bucket_number + {{ shift }} as bucket_number,
            {%- for metric in metrics %}
            {{ metric }}__n,
            {{ metric }}__sum,
            {{ metric }}__sum_sq,
            {%- endfor %}
            reading_count
        from bucket_sums
        {% if not loop.last %}union all{% endif %}
        {%- endfor %}
    ) as shifted
    group by device_id, device_type, bucket_number

),

-- Each neighbourhood with its device type's limits: the readings then need one join, not two. (On
-- DuckDB the CTE is materialized: inlined, the optimizer joins the limits to the readings again.)
baselines as {{ materialized_cte() }} (

    select
        neighbourhood_sums.*,
        {%- for metric in metrics %}
        {%- for limit in ['valid_min', 'valid_max', 'alert_min', 'alert_max', 'max_jump'] %}
        limits_by_device_type.{{ metric }}__{{ limit }},
        {%- endfor %}
        {%- endfor %}
        limits_by_device_type.reporting_interval_s,
        limits_by_device_type.silence_after_s
    from neighbourhood_sums
    inner join limits_by_device_type
        on neighbourhood_sums.device_type = limits_by_device_type.device_type

),

-- Per reading and metric: the scores of threshold_breach, zscore_outlier and rate_of_change, and whether
-- the value repeats the previous reading's (flatlines are runs of repeats, found below).
scored_readings as (

    select
        sequenced_readings.device_id,
        sequenced_readings.device_type,
        sequenced_readings.site_id,
        sequenced_readings.event_date,
        sequenced_readings.event_at,
        sequenced_readings.seq,
        sequenced_readings.ingested_at,
        sequenced_readings.reading_number,
        sequenced_readings.previous_event_at,
        sequenced_readings.previous_event_date,
        baselines.silence_after_s,
        {{ seconds_between('sequenced_readings.previous_event_at', 'sequenced_readings.event_at') }}
        / baselines.silence_after_s as gap_score,
        {%- for metric in metrics %}
        {%- set m = 'sequenced_readings.' ~ metric %}
        {%- set limit = 'baselines.' ~ metric ~ '__' %}
        {%- set sums = 'baselines.' ~ metric ~ '__' %}
        {{ m }},
        case
            when {{ m }} > {{ limit }}alert_max
                then ({{ m }} - {{ limit }}alert_max)
                    / nullif({{ limit }}valid_max - {{ limit }}alert_max, 0)
            when {{ m }} < {{ limit }}alert_min
                then ({{ limit }}alert_min - {{ m }})
                    / nullif({{ limit }}alert_min - {{ limit }}valid_min, 0)
        end as {{ metric }}__threshold_breach__score,
        case
            when {{ sums }}n - 1 >= 5
                then {{ zscore(
                    m, '(' ~ sums ~ 'n - 1)', '(' ~ sums ~ 'sum - ' ~ m ~ ')',
                    '(' ~ sums ~ 'sum_sq - ' ~ m ~ ' * ' ~ m ~ ')',
                    '0.001 * (' ~ limit ~ 'valid_max - ' ~ limit ~ 'valid_min)'
                ) }}
        end as {{ metric }}__zscore_outlier__score,
        abs({{ m }} - {{ m }}__previous) / (
            {{ limit }}max_jump
            * greatest(
                1.0,
                {{ seconds_between('sequenced_readings.previous_event_at', 'sequenced_readings.event_at') }}
                / baselines.reporting_interval_s
            )
        ) as {{ metric }}__rate_of_change__score,
        case when {{ m }} = {{ m }}__previous then 1.0 end as {{ metric }}__repeat__score,
        {%- endfor %}
        {{ bucket_number('sequenced_readings.event_at') }} as bucket_number
    from sequenced_readings
    inner join baselines
        on
            sequenced_readings.device_id = baselines.device_id
            and {{ bucket_number('sequenced_readings.event_at') }} = baselines.bucket_number

),

-- Readings that matter from here on (few): flagged for some metric and kind or repeating a value
-- (has_point), or ending a silence.
notable_readings as (

    select *
    from (
        select
            *,
            coalesce(
                false
                {%- for metric in metrics %}
                {%- for kind in point_kinds %}
                or {{ flag_condition(metric ~ '__' ~ kind ~ '__score', kind) }}
                {%- endfor %}
                {%- endfor %},
                false
            ) as has_point
        from scored_readings
    ) as flagged_readings
    where
        has_point
        or gap_score > 1

),

metric_kinds as (

    select
        metric_kind_pairs.metric,
        metric_kind_pairs.anomaly_kind
    from (
        values
        {%- for metric in metrics %}
        {%- set last_metric = loop.last %}
        {%- for kind in point_kinds %}
        ('{{ metric }}', '{{ kind }}'){{ ',' if not (loop.last and last_metric) }}
        {%- endfor %}
        {%- endfor %}
    ) as metric_kind_pairs (metric, anomaly_kind)

),

-- Long form of the flagged points: one row per (reading, metric, kind) that is flagged.
metric_points as (

    select *
    from (
        select
            notable_readings.device_id,
            notable_readings.device_type,
            notable_readings.site_id,
            notable_readings.event_date,
            notable_readings.event_at,
            notable_readings.seq,
            notable_readings.ingested_at,
            notable_readings.reading_number,
            notable_readings.previous_event_at,
            notable_readings.previous_event_date,
            cast(metric_kinds.metric as varchar) as metric,
            cast(metric_kinds.anomaly_kind as varchar) as anomaly_kind,
            case metric_kinds.metric
                {%- for metric in metrics %}
                when '{{ metric }}' then notable_readings.{{ metric }}
                {%- endfor %}
            end as metric_value,
            case
                {%- for metric in metrics %}
                {%- for kind in point_kinds %}
                when metric_kinds.metric = '{{ metric }}' and metric_kinds.anomaly_kind = '{{ kind }}'
                    then notable_readings.{{ metric }}__{{ kind }}__score
                {%- endfor %}
                {%- endfor %}
            end as point_score
        from notable_readings
        cross join metric_kinds
        where notable_readings.has_point
    ) as points
    where
        false
        {%- for kind in point_kinds %}
        or (anomaly_kind = '{{ kind }}' and {{ flag_condition('point_score', kind) }})
        {%- endfor %}

),

-- flatline: a reading ending a run of the same value at least flat_readings long, within one day: it and
-- the flat_readings - 2 readings before it all repeat their predecessor's value. The minimum duration is
-- checked on the whole window, below.
flatline_points as (

    select
        device_id,
        device_type,
        site_id,
        event_date,
        event_at,
        seq,
        ingested_at,
        reading_number,
        metric,
        cast('flatline' as varchar) as anomaly_kind,
        metric_value,
        1.0 as point_score,
        run_started_at as point_started_at
    from (
        select
            *,
            lag(reading_number, {{ flat_readings - 2 }}) over {{ metric_series }} as run_reading_number,
            lag(previous_event_at, {{ flat_readings - 2 }}) over {{ metric_series }} as run_started_at,
            lag(previous_event_date, {{ flat_readings - 2 }}) over {{ metric_series }} as run_started_date
        from metric_points
        where anomaly_kind = 'repeat'
    ) as repeats
    where
        run_reading_number = reading_number - {{ flat_readings - 2 }}
        and run_started_date = event_date

),

flagged_points as (

    select
        device_id,
        device_type,
        site_id,
        event_date,
        event_at,
        seq,
        ingested_at,
        reading_number,
        metric,
        anomaly_kind,
        metric_value,
        point_score,
        event_at as point_started_at
    from metric_points
    where anomaly_kind <> 'repeat'

    union all

    select * from flatline_points

),

{%- if around_new_readings %}

-- Only the points within an interval's core, or the flatline runs shorter than the minimum before it: the
-- windows kept lie there, and further out the readings around a point may be missing.
core_points as (

    select flagged_points.*
    from flagged_points
    where
        exists (
            select 1 from island_cores
            where
                island_cores.device_id = flagged_points.device_id
                and flagged_points.event_at >= {{ dbt.dateadd('second', -1 * flat_seconds, 'island_cores.core_start') }}
                and flagged_points.event_at <= island_cores.core_end
        )

),

{%- endif %}

-- A point starts a new window unless the reading just before it, on the same day, is a point of the same
-- metric and kind.
numbered_points as (

    select
        *,
        sum(case when is_window_start then 1 else 0 end) over (
            partition by device_id, metric, anomaly_kind
            order by event_at, seq
            rows between unbounded preceding and current row
        ) as window_number
    from (
        select
            *,
            coalesce(
                lag(reading_number) over {{ point_series }} <> reading_number - 1
                or lag(event_date) over {{ point_series }} <> event_date,
                true
            ) as is_window_start
        from {{ 'core_points' if around_new_readings else 'flagged_points' }}
    ) as points

),

point_windows as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        anomaly_kind,
        event_date,
        min(point_started_at) as started_at,
        max(event_at) as ended_at,
        max_by(metric_value, point_score) as peak_value,
        case
            when anomaly_kind = 'flatline'
                then
                    {{ seconds_between('min(point_started_at)', 'max(event_at)') }}
                    / cast({{ flat_minimum_s }} as double)
            else max(point_score)
        end as score,
        count(*) + case when anomaly_kind = 'flatline' then {{ flat_readings - 1 }} else 0 end as reading_count,
        max(ingested_at) as last_ingested_at
    from numbered_points
    group by device_id, device_type, site_id, metric, anomaly_kind, event_date, window_number
    having
        anomaly_kind <> 'flatline'
        or {{ seconds_between('min(point_started_at)', 'max(event_at)') }} >= {{ flat_minimum_s }}

),

-- data_gap: the device sent nothing for longer than its type's silence_after_s. One window per silence,
-- from the last reading before it to the first after it, owned by the day of the latter.
data_gaps as (

    select
        device_id,
        device_type,
        site_id,
        cast(null as varchar) as metric,
        cast('data_gap' as varchar) as anomaly_kind,
        event_date,
        previous_event_at as started_at,
        event_at as ended_at,
        cast(null as double) as peak_value,
        gap_score as score,
        cast(0 as bigint) as reading_count,
        ingested_at as last_ingested_at
    from notable_readings
    where gap_score > 1

),

{% if around_new_readings -%}

-- The device-days rebuilt: those of the windows computed again that meet an interval, of the windows
-- already built that do, and of new out_of_range readings.
touched_device_days as (

    select
        point_windows.device_id,
        point_windows.event_date
    from point_windows
    where {{ window_meets_an_interval('point_windows') }}

    union all

    select
        data_gaps.device_id,
        data_gaps.event_date
    from data_gaps
    where {{ window_meets_an_interval('data_gaps') }}

    union all

    select
        changed_windows.device_id,
        changed_windows.event_date
    from changed_windows

    union all

    select
        new_readings.device_id,
        new_readings.event_date
    from new_readings
    where not new_readings.is_accepted

),

changed_device_days as (

    {{ anomaly_device_days_to_rebuild('touched_device_days', ref('silver_classified_readings')) }}

),

-- The out_of_range windows of a rebuilt device-day are all computed again (its rejected readings are few).
rejected_to_scan as (

    select rejected_readings.*
    from {{ ref('silver_classified_readings') }} as rejected_readings
    inner join changed_device_days
        on
            rejected_readings.device_id = changed_device_days.device_id
            and rejected_readings.event_date = changed_device_days.event_date
    where
        rejected_readings.rejection_reason = 'out_of_range'
    {%- if first_new_date %}
        and rejected_readings.event_date >= cast({{ dbt.dateadd('day', -1, first_new_date) }} as date)
    {%- endif %}

),

{%- endif %}

-- out_of_range: readings silver rejected as impossible values, readings no more than a few reporting
-- intervals apart forming one window. Score: how far outside, as a share of the valid range.
out_of_range_points as (

    select
        rejected_to_scan.device_id,
        rejected_to_scan.device_type,
        rejected_to_scan.site_id,
        rejected_to_scan.event_date,
        rejected_to_scan.event_at,
        rejected_to_scan.seq,
        rejected_to_scan.ingested_at,
        rejected_to_scan.rejected_metric as metric,
        case rejected_to_scan.rejected_metric
            {%- for metric in metrics %}
            when '{{ metric }}' then rejected_to_scan.{{ metric }}
            {%- endfor %}
        end as metric_value,
        metric_limits.valid_min,
        metric_limits.valid_max,
        device_types.reporting_interval_s
    from rejected_to_scan
    inner join metric_limits
        on
            rejected_to_scan.device_type = metric_limits.device_type
            and rejected_to_scan.rejected_metric = metric_limits.metric
    inner join device_types
        on rejected_to_scan.device_type = device_types.device_type
    where rejected_to_scan.copy_number = 1

),

out_of_range_scored as (

    select
        *,
        case
            when {{ is_not_finite('metric_value') }} then 1.0
            when metric_value > valid_max then (metric_value - valid_max) / (valid_max - valid_min)
            else (valid_min - metric_value) / (valid_max - valid_min)
        end as point_score,
        coalesce(
            {{ seconds_between(
                'lag(event_at) over (partition by device_id, metric, event_date order by event_at, seq)',
                'event_at'
            ) }} <= {{ var('anomaly_out_of_range_gap_intervals') }} * reporting_interval_s,
            false
        ) as is_continued
    from out_of_range_points

),

out_of_range_windows as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        cast('out_of_range' as varchar) as anomaly_kind,
        event_date,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        max_by(metric_value, point_score) as peak_value,
        max(point_score) as score,
        count(*) as reading_count,
        max(ingested_at) as last_ingested_at
    from (
        select
            *,
            sum(case when is_continued then 0 else 1 end) over (
                partition by device_id, metric, event_date
                order by event_at, seq
                rows between unbounded preceding and current row
            ) as window_number
        from out_of_range_scored
    ) as numbered
    group by device_id, device_type, site_id, metric, event_date, window_number

),

detected_windows as (

    select * from point_windows
    union all
    select * from data_gaps
    union all
    select * from out_of_range_windows

),

-- Scores rounded to 6 decimals: a window computed again from another set of neighbouring readings (a
-- later incremental build) sums the same floating-point values in another order, and must come out the
-- same.
scored_windows as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        anomaly_kind,
        event_date,
        started_at,
        ended_at,
        peak_value,
        round(score, 6) as score,
        reading_count,
        last_ingested_at
    from detected_windows

),

all_windows as (

    select
        *,
        case anomaly_kind
            when 'threshold_breach' then {{ severity('score', 0.1, 0.5) }}
            when 'zscore_outlier' then {{ severity('score', 0, 10) }}
            when 'rate_of_change' then {{ severity('score', 1, 3) }}
            when 'data_gap' then {{ severity('score', 1, 6) }}
            when 'out_of_range' then {{ severity('score', 0, 0.25) }}
            else {{ severity('score', 1, 15) }}
        end as severity
    from scored_windows

),

{% if backfill -%}

changed_device_days as (

    select
        readings.device_id,
        readings.event_date
    from readings
    where {{ in_backfill_range('readings.event_date', backfill) }}

    union

    select
        rejected_to_scan.device_id,
        rejected_to_scan.event_date
    from rejected_to_scan

),

{%- endif %}

{% if is_incremental() -%}

-- The rebuilt device-days' windows (changed_device_days: around the new readings above, or the
-- backfill's range). Around new readings: those computed again that meet an interval and every
-- out_of_range one, and the others as they were built.
windows_to_keep as (

    select all_windows.*
    from all_windows
    inner join changed_device_days
        on
            all_windows.device_id = changed_device_days.device_id
            and all_windows.event_date = changed_device_days.event_date
    {%- if around_new_readings %}
    where
        all_windows.anomaly_kind = 'out_of_range'
        or {{ window_meets_an_interval('all_windows') }}

    union all

    select
        built_windows.device_id,
        built_windows.device_type,
        built_windows.site_id,
        built_windows.metric,
        built_windows.anomaly_kind,
        built_windows.event_date,
        built_windows.started_at,
        built_windows.ended_at,
        built_windows.peak_value,
        built_windows.score,
        built_windows.reading_count,
        built_windows.last_ingested_at,
        built_windows.severity
    from {{ this }} as built_windows
    inner join changed_device_days
        on
            built_windows.device_id = changed_device_days.device_id
            and built_windows.event_date = changed_device_days.event_date
    where
        built_windows.anomaly_kind <> 'out_of_range'
        and not {{ window_meets_an_interval('built_windows') }}
    {%- endif %}

),

{%- else -%}

windows_to_keep as (

    select * from all_windows

),

{%- endif %}

final as (

    select
        {{ anomaly_id('device_id', 'metric', 'anomaly_kind', 'started_at') }} as anomaly_id,
        device_id,
        device_type,
        site_id,
        metric,
        anomaly_kind,
        started_at,
        ended_at,
        peak_value,
        score,
        severity,
        reading_count,
        last_ingested_at,
        event_date
    from windows_to_keep

    {%- if is_incremental() and emits_scope_rows() %}

    -- Scope rows (anomaly_id null): every rebuilt device-day, also those left without any anomaly.
    union all

    select
        cast(null as varchar) as anomaly_id,
        device_id,
        cast(null as varchar) as device_type,
        cast(null as varchar) as site_id,
        cast(null as varchar) as metric,
        cast(null as varchar) as anomaly_kind,
        cast(null as timestamp) as started_at,
        cast(null as timestamp) as ended_at,
        cast(null as double) as peak_value,
        cast(null as double) as score,
        cast(null as varchar) as severity,
        cast(null as bigint) as reading_count,
        cast(null as timestamp) as last_ingested_at,
        event_date
    from changed_device_days
    {%- endif %}

)

select * from final

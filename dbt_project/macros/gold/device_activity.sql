{#
    What a device's readings say about its activity, as aggregate columns over `readings` (a relation
    alias with event_at and battery_pct): first and last reading, and the last reading that reported a
    battery charge with that charge. gold_device_activity_daily stores them per device-day;
    gold_device_health computes them the same way for the part of a day up to its reference time.
    Renders a select list without a trailing comma.
#}
{% macro device_activity_aggregates(readings) -%}
    {%- set battery_at = 'case when ' ~ readings ~ '.battery_pct is not null then ' ~ readings ~ '.event_at end' -%}
        min({{ readings }}.event_at) as first_event_at,
        max({{ readings }}.event_at) as last_event_at,
        max({{ battery_at }}) as last_battery_at,
        max_by({{ readings }}.battery_pct, {{ battery_at }}) as last_battery_pct
{%- endmacro %}

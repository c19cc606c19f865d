{#- The bronze step trainer rows step_trainer_trusted does not keep, each with its reason (step_trainer_classified). -#}
-- every column of step_trainer_classified, whose rejected half this is
select *  -- noqa: AM04
from {{ ref('step_trainer_classified') }}
where rejection_reason is not null

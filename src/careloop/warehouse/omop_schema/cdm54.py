"""The OMOP CDM 5.4 tables as text, transcribed from OHDSI's DDL and field-level CSV."""

from __future__ import annotations

# The CDM 5.4 tables, one column per line:
#   name  type  [req] [pk] [fk=TABLE] [domain=Domain Name]
# ``type`` is the CDM's: integer, float, date, datetime, varchar(n), varchar(max).
_SPEC = """
person clinical
  person_id integer req pk
  gender_concept_id integer req fk=concept domain=Gender
  year_of_birth integer req
  month_of_birth integer
  day_of_birth integer
  birth_datetime datetime
  race_concept_id integer req fk=concept domain=Race
  ethnicity_concept_id integer req fk=concept domain=Ethnicity
  location_id integer fk=location
  provider_id integer fk=provider
  care_site_id integer fk=care_site
  person_source_value varchar(50)
  gender_source_value varchar(50)
  gender_source_concept_id integer fk=concept
  race_source_value varchar(50)
  race_source_concept_id integer fk=concept
  ethnicity_source_value varchar(50)
  ethnicity_source_concept_id integer fk=concept

observation_period clinical
  observation_period_id integer req pk
  person_id integer req fk=person
  observation_period_start_date date req
  observation_period_end_date date req
  period_type_concept_id integer req fk=concept domain=Type_Concept

visit_occurrence clinical
  visit_occurrence_id integer req pk
  person_id integer req fk=person
  visit_concept_id integer req fk=concept domain=Visit
  visit_start_date date req
  visit_start_datetime datetime
  visit_end_date date req
  visit_end_datetime datetime
  visit_type_concept_id integer req fk=concept domain=Type_Concept
  provider_id integer fk=provider
  care_site_id integer fk=care_site
  visit_source_value varchar(50)
  visit_source_concept_id integer fk=concept
  admitted_from_concept_id integer fk=concept domain=Visit
  admitted_from_source_value varchar(50)
  discharged_to_concept_id integer fk=concept domain=Visit
  discharged_to_source_value varchar(50)
  preceding_visit_occurrence_id integer fk=visit_occurrence

visit_detail clinical
  visit_detail_id integer req pk
  person_id integer req fk=person
  visit_detail_concept_id integer req fk=concept domain=Visit
  visit_detail_start_date date req
  visit_detail_start_datetime datetime
  visit_detail_end_date date req
  visit_detail_end_datetime datetime
  visit_detail_type_concept_id integer req fk=concept domain=Type_Concept
  provider_id integer fk=provider
  care_site_id integer fk=care_site
  visit_detail_source_value varchar(50)
  visit_detail_source_concept_id integer fk=concept
  admitted_from_concept_id integer fk=concept domain=Visit
  admitted_from_source_value varchar(50)
  discharged_to_source_value varchar(50)
  discharged_to_concept_id integer fk=concept domain=Visit
  preceding_visit_detail_id integer fk=visit_detail
  parent_visit_detail_id integer fk=visit_detail
  visit_occurrence_id integer req fk=visit_occurrence

condition_occurrence clinical
  condition_occurrence_id integer req pk
  person_id integer req fk=person
  condition_concept_id integer req fk=concept domain=Condition
  condition_start_date date req
  condition_start_datetime datetime
  condition_end_date date
  condition_end_datetime datetime
  condition_type_concept_id integer req fk=concept domain=Type_Concept
  condition_status_concept_id integer fk=concept domain=Condition_Status
  stop_reason varchar(20)
  provider_id integer fk=provider
  visit_occurrence_id integer fk=visit_occurrence
  visit_detail_id integer fk=visit_detail
  condition_source_value varchar(50)
  condition_source_concept_id integer fk=concept
  condition_status_source_value varchar(50)

drug_exposure clinical
  drug_exposure_id integer req pk
  person_id integer req fk=person
  drug_concept_id integer req fk=concept domain=Drug
  drug_exposure_start_date date req
  drug_exposure_start_datetime datetime
  drug_exposure_end_date date req
  drug_exposure_end_datetime datetime
  verbatim_end_date date
  drug_type_concept_id integer req fk=concept domain=Type_Concept
  stop_reason varchar(20)
  refills integer
  quantity float
  days_supply integer
  sig varchar(max)
  route_concept_id integer fk=concept domain=Route
  lot_number varchar(50)
  provider_id integer fk=provider
  visit_occurrence_id integer fk=visit_occurrence
  visit_detail_id integer fk=visit_detail
  drug_source_value varchar(50)
  drug_source_concept_id integer fk=concept
  route_source_value varchar(50)
  dose_unit_source_value varchar(50)

procedure_occurrence clinical
  procedure_occurrence_id integer req pk
  person_id integer req fk=person
  procedure_concept_id integer req fk=concept domain=Procedure
  procedure_date date req
  procedure_datetime datetime
  procedure_end_date date
  procedure_end_datetime datetime
  procedure_type_concept_id integer req fk=concept domain=Type_Concept
  modifier_concept_id integer fk=concept
  quantity integer
  provider_id integer fk=provider
  visit_occurrence_id integer fk=visit_occurrence
  visit_detail_id integer fk=visit_detail
  procedure_source_value varchar(50)
  procedure_source_concept_id integer fk=concept
  modifier_source_value varchar(50)

device_exposure clinical
  device_exposure_id integer req pk
  person_id integer req fk=person
  device_concept_id integer req fk=concept domain=Device
  device_exposure_start_date date req
  device_exposure_start_datetime datetime
  device_exposure_end_date date
  device_exposure_end_datetime datetime
  device_type_concept_id integer req fk=concept domain=Type_Concept
  unique_device_id varchar(255)
  production_id varchar(255)
  quantity integer
  provider_id integer fk=provider
  visit_occurrence_id integer fk=visit_occurrence
  visit_detail_id integer fk=visit_detail
  device_source_value varchar(50)
  device_source_concept_id integer fk=concept
  unit_concept_id integer fk=concept domain=Unit
  unit_source_value varchar(50)
  unit_source_concept_id integer fk=concept

measurement clinical
  measurement_id integer req pk
  person_id integer req fk=person
  measurement_concept_id integer req fk=concept domain=Measurement
  measurement_date date req
  measurement_datetime datetime
  measurement_time varchar(10)
  measurement_type_concept_id integer req fk=concept domain=Type_Concept
  operator_concept_id integer fk=concept
  value_as_number float
  value_as_concept_id integer fk=concept
  unit_concept_id integer fk=concept domain=Unit
  range_low float
  range_high float
  provider_id integer fk=provider
  visit_occurrence_id integer fk=visit_occurrence
  visit_detail_id integer fk=visit_detail
  measurement_source_value varchar(50)
  measurement_source_concept_id integer fk=concept
  unit_source_value varchar(50)
  unit_source_concept_id integer fk=concept
  value_source_value varchar(50)
  measurement_event_id integer
  meas_event_field_concept_id integer fk=concept

observation clinical
  observation_id integer req pk
  person_id integer req fk=person
  observation_concept_id integer req fk=concept
  observation_date date req
  observation_datetime datetime
  observation_type_concept_id integer req fk=concept domain=Type_Concept
  value_as_number float
  value_as_string varchar(60)
  value_as_concept_id integer fk=concept
  qualifier_concept_id integer fk=concept
  unit_concept_id integer fk=concept domain=Unit
  provider_id integer fk=provider
  visit_occurrence_id integer fk=visit_occurrence
  visit_detail_id integer fk=visit_detail
  observation_source_value varchar(50)
  observation_source_concept_id integer fk=concept
  unit_source_value varchar(50)
  qualifier_source_value varchar(50)
  value_source_value varchar(50)
  observation_event_id integer
  obs_event_field_concept_id integer fk=concept

death clinical
  person_id integer req fk=person
  death_date date req
  death_datetime datetime
  death_type_concept_id integer fk=concept domain=Type_Concept
  cause_concept_id integer fk=concept
  cause_source_value varchar(50)
  cause_source_concept_id integer fk=concept

note clinical
  note_id integer req pk
  person_id integer req fk=person
  note_date date req
  note_datetime datetime
  note_type_concept_id integer req fk=concept domain=Type_Concept
  note_class_concept_id integer req fk=concept
  note_title varchar(250)
  note_text varchar(max) req
  encoding_concept_id integer req fk=concept
  language_concept_id integer req fk=concept
  provider_id integer fk=provider
  visit_occurrence_id integer fk=visit_occurrence
  visit_detail_id integer fk=visit_detail
  note_source_value varchar(50)
  note_event_id integer
  note_event_field_concept_id integer fk=concept

note_nlp clinical
  note_nlp_id integer req pk
  note_id integer req fk=note
  section_concept_id integer fk=concept
  snippet varchar(250)
  offset varchar(50)
  lexical_variant varchar(250) req
  note_nlp_concept_id integer fk=concept
  note_nlp_source_concept_id integer fk=concept
  nlp_system varchar(250)
  nlp_date date req
  nlp_datetime datetime
  term_exists varchar(1)
  term_temporal varchar(50)
  term_modifiers varchar(2000)

specimen clinical
  specimen_id integer req pk
  person_id integer req fk=person
  specimen_concept_id integer req fk=concept domain=Specimen
  specimen_type_concept_id integer req fk=concept domain=Type_Concept
  specimen_date date req
  specimen_datetime datetime
  quantity float
  unit_concept_id integer fk=concept domain=Unit
  anatomic_site_concept_id integer fk=concept
  disease_status_concept_id integer fk=concept
  specimen_source_id varchar(50)
  specimen_source_value varchar(50)
  unit_source_value varchar(50)
  anatomic_site_source_value varchar(50)
  disease_status_source_value varchar(50)

fact_relationship clinical
  domain_concept_id_1 integer req fk=concept
  fact_id_1 integer req
  domain_concept_id_2 integer req fk=concept
  fact_id_2 integer req
  relationship_concept_id integer req fk=concept

location health_system
  location_id integer req pk
  address_1 varchar(50)
  address_2 varchar(50)
  city varchar(50)
  state varchar(2)
  zip varchar(9)
  county varchar(20)
  location_source_value varchar(50)
  country_concept_id integer fk=concept
  country_source_value varchar(80)
  latitude float
  longitude float

care_site health_system
  care_site_id integer req pk
  care_site_name varchar(255)
  place_of_service_concept_id integer fk=concept domain=Visit
  location_id integer fk=location
  care_site_source_value varchar(50)
  place_of_service_source_value varchar(50)

provider health_system
  provider_id integer req pk
  provider_name varchar(255)
  npi varchar(20)
  dea varchar(20)
  specialty_concept_id integer fk=concept domain=Provider
  care_site_id integer fk=care_site
  year_of_birth integer
  gender_concept_id integer fk=concept domain=Gender
  provider_source_value varchar(50)
  specialty_source_value varchar(50)
  specialty_source_concept_id integer fk=concept
  gender_source_value varchar(50)
  gender_source_concept_id integer fk=concept

payer_plan_period economic
  payer_plan_period_id integer req pk
  person_id integer req fk=person
  payer_plan_period_start_date date req
  payer_plan_period_end_date date req
  payer_concept_id integer fk=concept
  payer_source_value varchar(50)
  payer_source_concept_id integer fk=concept
  plan_concept_id integer fk=concept
  plan_source_value varchar(50)
  plan_source_concept_id integer fk=concept
  sponsor_concept_id integer fk=concept
  sponsor_source_value varchar(50)
  sponsor_source_concept_id integer fk=concept
  family_source_value varchar(50)
  stop_reason_concept_id integer fk=concept
  stop_reason_source_value varchar(50)
  stop_reason_source_concept_id integer fk=concept

cost economic
  cost_id integer req pk
  cost_event_id integer req
  cost_domain_id varchar(20) req fk=domain
  cost_type_concept_id integer req fk=concept domain=Type_Concept
  currency_concept_id integer fk=concept domain=Currency
  total_charge float
  total_cost float
  total_paid float
  paid_by_payer float
  paid_by_patient float
  paid_patient_copay float
  paid_patient_coinsurance float
  paid_patient_deductible float
  paid_by_primary float
  paid_ingredient_cost float
  paid_dispensing_fee float
  payer_plan_period_id integer fk=payer_plan_period
  amount_allowed float
  revenue_code_concept_id integer fk=concept domain=Revenue_Code
  revenue_code_source_value varchar(50)
  drg_concept_id integer fk=concept
  drg_source_value varchar(3)

drug_era derived
  drug_era_id integer req pk
  person_id integer req fk=person
  drug_concept_id integer req fk=concept domain=Drug
  drug_era_start_date date req
  drug_era_end_date date req
  drug_exposure_count integer
  gap_days integer

dose_era derived
  dose_era_id integer req pk
  person_id integer req fk=person
  drug_concept_id integer req fk=concept domain=Drug
  unit_concept_id integer req fk=concept domain=Unit
  dose_value float req
  dose_era_start_date date req
  dose_era_end_date date req

condition_era derived
  condition_era_id integer req pk
  person_id integer req fk=person
  condition_concept_id integer req fk=concept domain=Condition
  condition_era_start_date date req
  condition_era_end_date date req
  condition_occurrence_count integer

episode derived
  episode_id integer req pk
  person_id integer req fk=person
  episode_concept_id integer req fk=concept domain=Episode
  episode_start_date date req
  episode_start_datetime datetime
  episode_end_date date
  episode_end_datetime datetime
  episode_parent_id integer fk=episode
  episode_number integer
  episode_object_concept_id integer req fk=concept
  episode_type_concept_id integer req fk=concept domain=Type_Concept
  episode_source_value varchar(50)
  episode_source_concept_id integer fk=concept

episode_event derived
  episode_id integer req fk=episode
  event_id integer req
  episode_event_field_concept_id integer req fk=concept

metadata metadata
  metadata_id integer req pk
  metadata_concept_id integer req fk=concept
  metadata_type_concept_id integer req fk=concept
  name varchar(250) req
  value_as_string varchar(250)
  value_as_concept_id integer fk=concept
  value_as_number float
  metadata_date date
  metadata_datetime datetime

cdm_source metadata
  cdm_source_name varchar(255) req
  cdm_source_abbreviation varchar(25) req
  cdm_holder varchar(255) req
  source_description varchar(max)
  source_documentation_reference varchar(255)
  cdm_etl_reference varchar(255)
  source_release_date date req
  cdm_release_date date req
  cdm_version varchar(10)
  cdm_version_concept_id integer req fk=concept
  vocabulary_version varchar(20) req

concept vocabulary
  concept_id integer req pk
  concept_name varchar(255) req
  domain_id varchar(20) req fk=domain
  vocabulary_id varchar(20) req fk=vocabulary
  concept_class_id varchar(20) req fk=concept_class
  standard_concept varchar(1)
  concept_code varchar(50) req
  valid_start_date date req
  valid_end_date date req
  invalid_reason varchar(1)

vocabulary vocabulary
  vocabulary_id varchar(20) req pk
  vocabulary_name varchar(255) req
  vocabulary_reference varchar(255)
  vocabulary_version varchar(255)
  vocabulary_concept_id integer req fk=concept

domain vocabulary
  domain_id varchar(20) req pk
  domain_name varchar(255) req
  domain_concept_id integer req fk=concept

concept_class vocabulary
  concept_class_id varchar(20) req pk
  concept_class_name varchar(255) req
  concept_class_concept_id integer req fk=concept

concept_relationship vocabulary
  concept_id_1 integer req fk=concept
  concept_id_2 integer req fk=concept
  relationship_id varchar(20) req fk=relationship
  valid_start_date date req
  valid_end_date date req
  invalid_reason varchar(1)

relationship vocabulary
  relationship_id varchar(20) req pk
  relationship_name varchar(255) req
  is_hierarchical varchar(1) req
  defines_ancestry varchar(1) req
  reverse_relationship_id varchar(20) req
  relationship_concept_id integer req fk=concept

concept_synonym vocabulary
  concept_id integer req fk=concept
  concept_synonym_name varchar(1000) req
  language_concept_id integer req fk=concept

concept_ancestor vocabulary
  ancestor_concept_id integer req fk=concept
  descendant_concept_id integer req fk=concept
  min_levels_of_separation integer req
  max_levels_of_separation integer req

source_to_concept_map vocabulary
  source_code varchar(50) req
  source_concept_id integer req fk=concept
  source_vocabulary_id varchar(20) req fk=vocabulary
  source_code_description varchar(255)
  target_concept_id integer req fk=concept
  target_vocabulary_id varchar(20) req fk=vocabulary
  valid_start_date date req
  valid_end_date date req
  invalid_reason varchar(1)

drug_strength vocabulary
  drug_concept_id integer req fk=concept
  ingredient_concept_id integer req fk=concept
  amount_value float
  amount_unit_concept_id integer fk=concept
  numerator_value float
  numerator_unit_concept_id integer fk=concept
  denominator_value float
  denominator_unit_concept_id integer fk=concept
  box_size integer
  valid_start_date date req
  valid_end_date date req
  invalid_reason varchar(1)

cohort derived
  cohort_definition_id integer req
  subject_id integer req
  cohort_start_date date req
  cohort_end_date date req

cohort_definition derived
  cohort_definition_id integer req
  cohort_definition_name varchar(255) req
  cohort_definition_description varchar(max)
  definition_type_concept_id integer req fk=concept
  cohort_definition_syntax varchar(max)
  subject_concept_id integer req fk=concept
  cohort_initiation_date date
"""

/**
 * Template text for the built-in task generators, kept as data so it can be reviewed against
 * its source and swapped without touching generator logic.
 *
 * IOI: ArthurConmy/Automatic-Circuit-Discovery `acdc/ioi/ioi_dataset.py` (a lightly edited copy of
 * Redwood's Easy-Transformer data set), as transcribed in shared/notes/landscape.md §4.
 * Greater-than: Hanna, Liu & Variengien 2023 ("How does GPT-2 compute greater-than?") as used by
 * ACDC `acdc/greaterthan/utils.py`.
 */

/** 99 first names; all single GPT-2 tokens with a leading space. */
export const IOI_NAMES: readonly string[] = [
  'Michael', 'Christopher', 'Jessica', 'Matthew', 'Ashley', 'Jennifer', 'Joshua', 'Amanda', 'Daniel',
  'David', 'James', 'Robert', 'John', 'Joseph', 'Andrew', 'Ryan', 'Brandon', 'Jason', 'Justin', 'Sarah',
  'William', 'Jonathan', 'Stephanie', 'Brian', 'Nicole', 'Nicholas', 'Anthony', 'Heather', 'Eric',
  'Elizabeth', 'Adam', 'Megan', 'Melissa', 'Kevin', 'Steven', 'Thomas', 'Timothy', 'Christina', 'Kyle',
  'Rachel', 'Laura', 'Lauren', 'Amber', 'Brittany', 'Danielle', 'Richard', 'Kimberly', 'Jeffrey', 'Amy',
  'Crystal', 'Michelle', 'Tiffany', 'Jeremy', 'Benjamin', 'Mark', 'Emily', 'Aaron', 'Charles', 'Rebecca',
  'Jacob', 'Stephen', 'Patrick', 'Sean', 'Erin', 'Jamie', 'Kelly', 'Samantha', 'Nathan', 'Sara', 'Dustin',
  'Paul', 'Angela', 'Tyler', 'Scott', 'Katherine', 'Andrea', 'Gregory', 'Erica', 'Mary', 'Travis', 'Lisa',
  'Kenneth', 'Bryan', 'Lindsey', 'Kristen', 'Jose', 'Alexander', 'Jesse', 'Katie', 'Lindsay', 'Shannon',
  'Vanessa', 'Courtney', 'Christine', 'Alicia', 'Cody', 'Allison', 'Bradley', 'Samuel',
];

export const IOI_PLACES: readonly string[] = [
  'store', 'garden', 'restaurant', 'school', 'hospital', 'office', 'house', 'station',
];

export const IOI_OBJECTS: readonly string[] = [
  'ring', 'kiss', 'bone', 'basketball', 'computer', 'necklace', 'drink', 'snack',
];

/**
 * The 15 BABA templates: `[B]` is the subject S, `[A]` the indirect object IO. Each full
 * sentence ends with ` [A]`; the model input is the sentence without it and the answer is IO.
 * The ABBA forms are derived (see `abbaFromBaba` in generators.ts), as ACDC does.
 */
export const IOI_BABA_TEMPLATES: readonly string[] = [
  'Then, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]',
  'Then, [B] and [A] had a lot of fun at the [PLACE]. [B] gave a [OBJECT] to [A]',
  'Then, [B] and [A] were working at the [PLACE]. [B] decided to give a [OBJECT] to [A]',
  'Then, [B] and [A] were thinking about going to the [PLACE]. [B] wanted to give a [OBJECT] to [A]',
  'Then, [B] and [A] had a long argument, and afterwards [B] said to [A]',
  'After [B] and [A] went to the [PLACE], [B] gave a [OBJECT] to [A]',
  'When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give it to [A]',
  'When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give the [OBJECT] to [A]',
  'While [B] and [A] were working at the [PLACE], [B] gave a [OBJECT] to [A]',
  'While [B] and [A] were commuting to the [PLACE], [B] gave a [OBJECT] to [A]',
  'After the lunch, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]',
  'Afterwards, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]',
  'Then, [B] and [A] had a long argument. Afterwards [B] said to [A]',
  'The [PLACE] [B] and [A] went to had a [OBJECT]. [B] gave it to [A]',
  'Friends [B] and [A] found a [OBJECT] at the [PLACE]. [B] gave it to [A]',
];

/**
 * Greater-than templates: `[XX]` is the century prefix (e.g. `17`), `[YY]` the two-digit start
 * year. The first one is the original from Hanna et al.; the prompt ends after the second `[XX]`
 * and the model should put its probability on two-digit years greater than `[YY]`.
 */
export const GREATER_THAN_TEMPLATES: readonly string[] = [
  'The [NOUN] lasted from the year [XX][YY] to the year [XX]',
  'The [NOUN] went on from the year [XX][YY] to the year [XX]',
  'The [NOUN] was active from the year [XX][YY] to the year [XX]',
];

/** Event nouns in the style of Hanna et al.'s list (all read naturally with "lasted from"). */
export const GREATER_THAN_NOUNS: readonly string[] = [
  'abduction', 'accord', 'affair', 'agreement', 'assessment', 'attack', 'campaign', 'captivity',
  'challenge', 'clash', 'collaboration', 'competition', 'confrontation', 'conspiracy', 'construction',
  'consultation', 'contract', 'cooperation', 'custody', 'deal', 'decline', 'development', 'dispute',
  'dynasty', 'effort', 'employment', 'engagement', 'epidemic', 'evaluation', 'exchange', 'expansion',
  'expedition', 'friendship', 'growth', 'hardship', 'illness', 'imprisonment', 'insurgency', 'invasion',
  'investigation', 'journey', 'marriage', 'negotiation', 'occupation', 'operation', 'outbreak',
  'pilgrimage', 'plague', 'program', 'project', 'quest', 'rebellion', 'reign', 'relationship', 'riot',
  'rivalry', 'romance', 'siege', 'strike', 'study', 'tour', 'treaty', 'trial', 'voyage', 'war',
];

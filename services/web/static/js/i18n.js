// English, French, German and Spanish: one dictionary each, switchable; the choice is kept in the
// browser (else the browser's language). A word missing in one language is said in English.
import { extra } from "./i18n-extra.js";
import { de } from "./i18n-de.js";
import { es } from "./i18n-es.js";

export const LANGUAGES = [["en", "English"], ["fr", "Français"], ["de", "Deutsch"], ["es", "Español"]];
const KEY = "portevoix.lang";

const en = {
  skip: "Skip to content", nav_label: "Pages", nav_hub: "Ambassador hub", nav_studio: "Comms studio", nav_watch: "Industry watch",
  nav_dashboard: "KPI dashboard", logout: "Sign out", language: "Language", signed_out: "Signed out: please sign in again",
  refresh: "Refresh", save: "Save", saved: "Saved", csv: "Export CSV", preview: "Preview", show: "Show",
  // hub
  hub_title: "Ambassador hub", training_title: "Charter and training kit",
  confirm_read: "I have read the charter and the training kit", kit_default: "The standard training kit (your comms team has not written its own yet).",
  kit_by: "Written by {who} (version {version}).", read_on: "Read on {when}.",
  read_first: "Read the charter and training kit, then confirm, before your first share.",
  enrolment_title: "Become an ambassador", consent_title: "Consent (version {version})",
  consent_default: "I volunteer to share company news on my own social networks. Portevoix records what I share and the clicks, reactions and reach of my posts, to measure the programme. I can stop at any time and ask for my data to be erased.",
  networks_legend: "The networks I will share on", audience_size: "People reached on {network}",
  accept_consent: "I have read and accept this consent", enrol: "Become an ambassador", enrolled_ok: "Welcome! You are an ambassador.",
  enrolled_since: "You are an ambassador since {since}; your consent is valid until {until}.", networks: "Networks",
  opt_out: "Stop being an ambassador", opted_out: "You are no longer an ambassador.", erase: "Erase my data",
  erase_confirm: "Yes, erase all my personal data", erased: "Your personal data is erased ({id}).",
  feed_title: "Posts to share", feed_enrol_first: "Become an ambassador to receive posts to share.",
  feed_empty: "Nothing to share yet: new posts appear here.", read_original: "Read the original",
  text_for: "Suggested text for {network} (edit it before sharing)", tracked_link: "Tracked link",
  share_on: "Share on {network}", copy_text: "Copy the text", copied: "Text copied.", i_shared: "I shared it",
  share_counted: "Thank you! Your share is counted.", share_known: "Already counted: thank you!",
  results_title: "My results", leaderboard: "Leaderboard", leaderboard_caption: "Ambassadors by shares (only those who chose to be named)",
  leaderboard_empty: "Nobody has chosen to be named yet.", rank: "Rank", ambassador: "Ambassador", shares: "Shares", me: "Me",
  preferences_title: "My preferences", channels: "Tell me on", pref_languages: "Languages (e.g. fr, en; empty = any)",
  pref_named: "Name me in leaderboards and digests (otherwise I am only counted)",
  pref_topics: "Topics (tags; empty = any)", pref_max: "At most this many per day", quiet_start: "Quiet hours from", quiet_end: "until",
  time_zone: "Time zone (e.g. Europe/Paris)",
  channel_in_app: "This hub", channel_email: "E-mail", channel_email_digest: "E-mail digest", channel_slack: "Slack", channel_teams: "Teams",
  network_linkedin: "LinkedIn", network_x: "X", network_facebook: "Facebook", network_xing: "Xing",
  // studio
  studio_title: "Comms studio", contents_title: "Contents", new_content: "New post", title: "Title", state: "State",
  authors: "Authors", updated: "Updated", editor_title: "Write", summary: "Summary", url: "Link to share (URL)",
  content_language: "Language", campaign: "Campaign", tags: "Tags (comma-separated)", share_texts: "Suggested text per network",
  publish_at: "Publish at", expire_at: "Expires at", audience: "Audience (empty = everyone)", org_tree: "Organisation:",
  audience_subsidiaries: "Subsidiaries (codes, comma-separated)", audience_groups: "Ambassador groups (comma-separated)",
  audience_countries: "Countries (FR, DE…)", audience_languages: "Languages (fr, en…)", save_draft: "Save",
  check_title: "Charter check", check_needs: "Give a title and a link (https://…) to check against the charter.",
  no_violation: "No charter violation.", violations_found: "{n} charter violation(s): see the highlighted text.",
  field_title: "Title", field_summary: "Summary", field_body: "Body", field_url: "Link", field_share: "Suggested text", field_image_url: "Image",
  workflow_title: "Review and publication", submit: "Submit for review", approve: "Approve", publish: "Publish now",
  schedule: "Schedule", retire: "Withdraw", reject_reason: "Reason for rejecting", reject: "Reject", audit: "History",
  four_eyes_rule: "Four eyes: whoever writes a version cannot approve it.",
  four_eyes_mine: "Four eyes: you wrote this version ({authors}), so another person must approve it.",
  four_eyes_other: "Four eyes: written by {authors}; you may review it.", revision: "revision {n}",
  state_new: "new", state_draft: "draft", state_in_review: "in review", state_approved: "approved", state_scheduled: "scheduled",
  state_published: "published", state_retired: "withdrawn",
  done_submit: "Submitted for review.", done_approve: "Approved.", done_publish: "Published.", done_schedule: "Scheduled.",
  done_retire: "Withdrawn.", done_reject: "Rejected back to draft.",
  kit_editor_title: "Training kit for ambassadors", kit_editor_help: "How to share well and what not to say: ambassadors confirm reading it before their first share.",
  kit_en: "In English", kit_fr: "In French", kit_saved: "Training kit saved (version {version}).",
  // dashboard
  dashboard_title: "KPI dashboard", scope_title: "Scope", scope_type: "Scope", scope_tenant: "Whole group",
  scope_subsidiary: "Subsidiary", scope_campaign: "Campaign", scope_network: "Network", scope_id: "Subsidiary, campaign or network",
  series_kpi: "KPI", live_title: "KPIs (all time, live)", updated_at: "Updated at {when} (every {every} s)",
  series_title: "Over the last 30 days", by_subsidiary_title: "By subsidiary", leaderboards_title: "Leaderboards",
  top_ambassadors: "Ambassadors (by shares)", top_contents: "Contents (by clicks)", digest_title: "Monthly digest", month: "Month",
  kpi_contents_published: "Posts published", kpi_enrolled_ambassadors: "Ambassadors", kpi_active_ambassadors: "Active ambassadors",
  kpi_shares: "Shares", kpi_clicks_total: "Clicks", kpi_clicks_unique_human: "Unique clicks", kpi_reactions: "Reactions",
  kpi_comments: "Comments", kpi_reshares: "Reshares", kpi_engagements: "Engagements", kpi_engagement_rate: "Engagement rate",
  kpi_potential_reach: "Potential reach", kpi_impressions: "Impressions",
  // login
  login_title: "Sign in (demo)", login_help: "A local login for the demo: choose a tenant, a user and roles.",
  tenant: "Tenant (company group)", subject: "User (HR employee id)", roles: "Roles",
  subsidiary_optional: "Subsidiary (optional: confines the roles)", sign_in: "Sign in", token_title: "Sign in with a token",
  token_help: "A token from your company's identity provider (OIDC).", token: "Token", use_token: "Use this token",
  login_invalid: "Sign-in refused: check the fields.", role_employee: "Employee (ambassador)", role_editor: "Editor",
  role_approver: "Approver", role_analyst: "Analyst", role_admin: "Administrator",
  login_page_title: "Sign in to Portevoix", oidc_title: "Your company account",
  oidc_help: "Sign in with your company's identity provider.", oidc_sign_in: "Sign in with your company account",
  login_reason_expired: "Your session has ended. Please sign in again.",
  login_reason_signed_out: "You are not signed in, or your session has ended. Please sign in.",
  login_reason_logged_out: "You are signed out.",
  login_error_failed: "Sign-in failed. Please try again; if it fails again, contact your administrator.",
  login_error_access_denied: "Sign-in was refused by your identity provider (access denied).",
  login_error_state_mismatch: "Sign-in failed: it was started in another tab or took too long. Please try again.",
  login_error_nonce_mismatch: "Sign-in failed: the identity provider's answer did not match this sign-in. Please try again.",
  login_error_token_refused: "Sign-in failed: your account's token is not accepted by Portevoix (no tenant or role?). Contact your administrator.",
  login_error_provider_unavailable: "Your identity provider cannot be reached. Please try again in a moment.",
  login_error_not_configured: "Sign-in with an identity provider is not set up on this server.",
  login_error_expired: "Your session has ended. Please sign in again.",
  login_unreachable: "The server cannot be reached. Please try again.",
  login_token_malformed: "This is not a token (a token has three parts separated by dots).",
  login_token_refused: "This token is not accepted",
};

const fr = {
  skip: "Aller au contenu", nav_label: "Pages", nav_hub: "Espace ambassadeur", nav_studio: "Studio com",
  nav_dashboard: "Tableau de bord", logout: "Se déconnecter", language: "Langue", signed_out: "Session terminée : reconnectez-vous",
  refresh: "Actualiser", save: "Enregistrer", saved: "Enregistré", csv: "Exporter en CSV", preview: "Aperçu", show: "Afficher",
  hub_title: "Espace ambassadeur", training_title: "Charte et kit de formation",
  confirm_read: "J'ai lu la charte et le kit de formation", kit_default: "Le kit de formation standard (votre équipe com n'a pas encore écrit le sien).",
  kit_by: "Écrit par {who} (version {version}).", read_on: "Lu le {when}.",
  read_first: "Lisez la charte et le kit de formation, puis confirmez, avant votre premier partage.",
  enrolment_title: "Devenir ambassadeur", consent_title: "Consentement (version {version})",
  consent_default: "Je choisis de partager des actualités de l'entreprise sur mes propres réseaux sociaux. Portevoix enregistre ce que je partage ainsi que les clics, réactions et la portée de mes publications, pour mesurer le programme. Je peux arrêter à tout moment et demander l'effacement de mes données.",
  networks_legend: "Les réseaux sur lesquels je partagerai", audience_size: "Personnes touchées sur {network}",
  accept_consent: "J'ai lu et j'accepte ce consentement", enrol: "Devenir ambassadeur", enrolled_ok: "Bienvenue ! Vous êtes ambassadeur.",
  enrolled_since: "Vous êtes ambassadeur depuis le {since} ; votre consentement est valable jusqu'au {until}.", networks: "Réseaux",
  opt_out: "Ne plus être ambassadeur", opted_out: "Vous n'êtes plus ambassadeur.", erase: "Effacer mes données",
  erase_confirm: "Oui, effacer toutes mes données personnelles", erased: "Vos données personnelles sont effacées ({id}).",
  feed_title: "Publications à partager", feed_enrol_first: "Devenez ambassadeur pour recevoir des publications à partager.",
  feed_empty: "Rien à partager pour l'instant : les nouvelles publications apparaîtront ici.", read_original: "Lire l'original",
  text_for: "Texte suggéré pour {network} (modifiable avant de partager)", tracked_link: "Lien suivi",
  share_on: "Partager sur {network}", copy_text: "Copier le texte", copied: "Texte copié.", i_shared: "Je l'ai partagé",
  share_counted: "Merci ! Votre partage est compté.", share_known: "Déjà compté : merci !",
  results_title: "Mes résultats", leaderboard: "Classement", leaderboard_caption: "Ambassadeurs par partages (seuls ceux qui ont accepté d'être nommés)",
  leaderboard_empty: "Personne n'a encore choisi d'être nommé.", rank: "Rang", ambassador: "Ambassadeur", shares: "Partages", me: "Moi",
  preferences_title: "Mes préférences", channels: "Me prévenir par", pref_languages: "Langues (ex. fr, en ; vide = toutes)",
  pref_named: "Me nommer dans les classements et les lettres mensuelles (sinon je suis seulement compté)",
  pref_topics: "Sujets (étiquettes ; vide = tous)", pref_max: "Au plus ce nombre par jour", quiet_start: "Pas de message de", quiet_end: "à",
  time_zone: "Fuseau horaire (ex. Europe/Paris)",
  channel_in_app: "Cet espace", channel_email: "E-mail", channel_email_digest: "Résumé par e-mail", channel_slack: "Slack", channel_teams: "Teams",
  network_linkedin: "LinkedIn", network_x: "X", network_facebook: "Facebook", network_xing: "Xing",
  studio_title: "Studio com", contents_title: "Contenus", new_content: "Nouvelle publication", title: "Titre", state: "État",
  authors: "Auteurs", updated: "Modifié", editor_title: "Rédiger", summary: "Résumé", url: "Lien à partager (URL)",
  content_language: "Langue", campaign: "Campagne", tags: "Étiquettes (séparées par des virgules)", share_texts: "Texte suggéré par réseau",
  publish_at: "Publier le", expire_at: "Expire le", audience: "Audience (vide = tout le monde)", org_tree: "Organisation :",
  audience_subsidiaries: "Filiales (codes, séparés par des virgules)", audience_groups: "Groupes d'ambassadeurs (séparés par des virgules)",
  audience_countries: "Pays (FR, DE…)", audience_languages: "Langues (fr, en…)", save_draft: "Enregistrer",
  check_title: "Vérification de la charte", check_needs: "Indiquez un titre et un lien (https://…) pour vérifier la charte.",
  no_violation: "Aucune infraction à la charte.", violations_found: "{n} infraction(s) à la charte : voir le texte surligné.",
  field_title: "Titre", field_summary: "Résumé", field_body: "Corps", field_url: "Lien", field_share: "Texte suggéré", field_image_url: "Image",
  workflow_title: "Relecture et publication", submit: "Soumettre à relecture", approve: "Approuver", publish: "Publier maintenant",
  schedule: "Programmer", retire: "Retirer", reject_reason: "Motif du refus", reject: "Refuser", audit: "Historique",
  four_eyes_rule: "Quatre yeux : l'auteur d'une version ne peut pas l'approuver.",
  four_eyes_mine: "Quatre yeux : vous avez écrit cette version ({authors}), une autre personne doit l'approuver.",
  four_eyes_other: "Quatre yeux : écrit par {authors} ; vous pouvez la relire.", revision: "révision {n}",
  state_new: "nouveau", state_draft: "brouillon", state_in_review: "en relecture", state_approved: "approuvé", state_scheduled: "programmé",
  state_published: "publié", state_retired: "retiré",
  done_submit: "Soumis à relecture.", done_approve: "Approuvé.", done_publish: "Publié.", done_schedule: "Programmé.",
  done_retire: "Retiré.", done_reject: "Renvoyé en brouillon.",
  kit_editor_title: "Kit de formation des ambassadeurs", kit_editor_help: "Bien partager et ce qu'il ne faut pas dire : les ambassadeurs confirment l'avoir lu avant leur premier partage.",
  kit_en: "En anglais", kit_fr: "En français", kit_saved: "Kit de formation enregistré (version {version}).",
  dashboard_title: "Tableau de bord des KPI", scope_title: "Périmètre", scope_type: "Périmètre", scope_tenant: "Tout le groupe",
  scope_subsidiary: "Filiale", scope_campaign: "Campagne", scope_network: "Réseau", scope_id: "Filiale, campagne ou réseau",
  series_kpi: "KPI", live_title: "KPI (depuis le début, en direct)", updated_at: "Mis à jour à {when} (toutes les {every} s)",
  series_title: "Sur les 30 derniers jours", by_subsidiary_title: "Par filiale", leaderboards_title: "Classements",
  top_ambassadors: "Ambassadeurs (par partages)", top_contents: "Contenus (par clics)", digest_title: "Résumé mensuel", month: "Mois",
  kpi_contents_published: "Publications", kpi_enrolled_ambassadors: "Ambassadeurs", kpi_active_ambassadors: "Ambassadeurs actifs",
  kpi_shares: "Partages", kpi_clicks_total: "Clics", kpi_clicks_unique_human: "Clics uniques", kpi_reactions: "Réactions",
  kpi_comments: "Commentaires", kpi_reshares: "Repartages", kpi_engagements: "Interactions", kpi_engagement_rate: "Taux d'interaction",
  kpi_potential_reach: "Portée potentielle", kpi_impressions: "Impressions",
  login_title: "Connexion (démo)", login_help: "Une connexion locale pour la démo : choisissez un groupe, un utilisateur et des rôles.",
  tenant: "Groupe (client)", subject: "Utilisateur (matricule RH)", roles: "Rôles",
  subsidiary_optional: "Filiale (facultatif : limite les rôles)", sign_in: "Se connecter", token_title: "Se connecter avec un jeton",
  token_help: "Un jeton du fournisseur d'identité de votre entreprise (OIDC).", token: "Jeton", use_token: "Utiliser ce jeton",
  login_invalid: "Connexion refusée : vérifiez les champs.", role_employee: "Salarié (ambassadeur)", role_editor: "Rédacteur",
  role_approver: "Approbateur", role_analyst: "Analyste", role_admin: "Administrateur",
  login_page_title: "Se connecter à Portevoix", oidc_title: "Votre compte d'entreprise",
  oidc_help: "Connectez-vous avec le fournisseur d'identité de votre entreprise.", oidc_sign_in: "Se connecter avec votre compte d'entreprise",
  login_reason_expired: "Votre session a pris fin. Reconnectez-vous.",
  login_reason_signed_out: "Vous n'êtes pas connecté, ou votre session a pris fin. Connectez-vous.",
  login_reason_logged_out: "Vous êtes déconnecté.",
  login_error_failed: "La connexion a échoué. Réessayez ; si elle échoue encore, contactez votre administrateur.",
  login_error_access_denied: "Votre fournisseur d'identité a refusé la connexion (accès refusé).",
  login_error_state_mismatch: "La connexion a échoué : commencée dans un autre onglet ou trop longue. Réessayez.",
  login_error_nonce_mismatch: "La connexion a échoué : la réponse du fournisseur d'identité ne correspond pas. Réessayez.",
  login_error_token_refused: "La connexion a échoué : le jeton de votre compte n'est pas accepté par Portevoix (pas de groupe ou de rôle ?). Contactez votre administrateur.",
  login_error_provider_unavailable: "Votre fournisseur d'identité est injoignable. Réessayez dans un instant.",
  login_error_not_configured: "La connexion par fournisseur d'identité n'est pas configurée sur ce serveur.",
  login_error_expired: "Votre session a pris fin. Reconnectez-vous.",
  login_unreachable: "Le serveur est injoignable. Réessayez.",
  login_token_malformed: "Ce n'est pas un jeton (un jeton a trois parties séparées par des points).",
  login_token_refused: "Ce jeton n'est pas accepté",
};

const DICTIONARIES = { en: { ...en, ...extra.en }, fr: { ...fr, ...extra.fr }, de: { ...de, ...extra.de },
                       es: { ...es, ...extra.es } };

export function currentLanguage() {
  const chosen = localStorage.getItem(KEY) || (navigator.language || "en").slice(0, 2);
  return chosen in DICTIONARIES ? chosen : "en";
}

export function setLanguage(language) { localStorage.setItem(KEY, language); }

// A page's own texts, per language, merged into the dictionaries (a page module calls it once).
export function addTexts(byLanguage) {
  for (const [language, texts] of Object.entries(byLanguage)) DICTIONARIES[language] = { ...DICTIONARIES[language], ...texts };
}

export function t(key, params = {}) {
  const text = DICTIONARIES[currentLanguage()][key] ?? DICTIONARIES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => params[name] ?? "");
}

// Every element with data-i18n gets its text in the current language; <html lang> follows.
export function applyI18n(root) {
  document.documentElement.lang = currentLanguage();
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("option[data-kpi]")) node.textContent = t(`kpi_${node.dataset.kpi}`);
}
